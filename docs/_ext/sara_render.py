"""What the documentation generates from the code, without Sphinx: the test suite checks these functions directly.

* :func:`lifecycle`, :func:`lifecycle_diagram` and :func:`lifecycle_svg`: the hook order, from a run of the reference
  loop recorded by the testing kit, as text (with each hook's arguments and purpose from
  :data:`~altametris.sara.core.hookspecs.HOOKS`) and drawn as an SVG;
* :func:`run_command`: a ``sara-callbacks`` command line and its real output;
* :func:`config_views` and :func:`config_problems`: a TOML config, the same config in YAML, and whether SARA accepts
  it;
* :func:`builtin_plugins` and :func:`parameter_rows`: the plugins that this distribution registers, and the table of
  each one's parameters;
* :func:`public_modules` and :func:`reexports`: what the API reference documents.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parents[2]
"""The repository."""

DISTRIBUTION = "sara-callbacks"
PACKAGES = ("altametris.sara.core", "altametris.sara.plugins")
PROGRAM = "sara-callbacks"


# -- the lifecycle -------------------------------------------------------------------------------------------------


def _call(hook: str) -> str:
    from altametris.sara.core.hookspecs import HOOKS

    return f"{hook}({', '.join(HOOKS[hook].argnames)})"


def _purpose(hook: str) -> str:
    """The first sentence of the hookspec's documentation, without its ``Called``."""
    from altametris.sara.core.hookspecs import HOOKS

    first = HOOKS[hook].doc.split("\n", 1)[0].split(";", 1)[0].split(" (", 1)[0].rstrip(".")
    return first.removeprefix("Called ")


def _unique(hooks: list[str]) -> list[str]:
    return list(dict.fromkeys(hooks))


class Segment(NamedTuple):
    """Hooks of an epoch called one after the other: once per epoch, or once per batch of one of its loops."""

    loop: str | None  # "batch" (training batches), "validation batch", or None (once per epoch)
    hooks: list[str]


class Lifecycle(NamedTuple):
    """The hooks of a training in the order the reference loop calls them, grouped by where they run."""

    before: list[str]
    epoch: list[Segment]
    after: list[str]
    failure: str


class _Saver:
    """Writes a checkpoint at every epoch's end, so that the recorded run announces one."""

    saves_checkpoints = True

    def on_epoch_end(self, epoch: int, metrics: object, save_checkpoint: Any, **kwargs: Any) -> None:
        save_checkpoint(f"epoch-{epoch}.ckpt")


def _loop(hook: str) -> str | None:
    """Which loop of an epoch ``hook`` runs in, from its hookspec: a batch hook, a validation batch's, or none."""
    from altametris.sara.core.hookspecs import HOOKS

    spec = HOOKS[hook]
    if "batch" not in spec.argnames:
        return None
    return "batch" if spec.scope == "batch" else "validation batch"


def lifecycle() -> Lifecycle:
    """The order of the hooks, read from a recorded run of :func:`~altametris.sara.core.loop.fit`.

    The run goes through :func:`~altametris.sara.core.testing.simulate`, resumed from a checkpoint and writing one
    at each epoch's end, so that every hook runs; nothing here is written by hand.
    """
    from altametris.sara.core.base_callback import BaseCallback
    from altametris.sara.core.testing import simulate

    saver = type("Saver", (_Saver, BaseCallback), {})()
    options: dict[str, Any] = {"resumed_from": "last.ckpt", "context": {"save_checkpoint": [].append}}
    events = simulate([saver], epochs=2, batches=2, validation_batches=2, **options).events
    first = next(index for index, event in enumerate(events) if event.epoch == 0)
    before = _unique([event.hook for event in events[:first]])
    epoch: list[Segment] = []
    for event in events:
        if event.epoch != 0:
            continue
        loop = _loop(event.hook)
        if not epoch or epoch[-1].loop != loop:
            epoch.append(Segment(loop, []))
        if event.hook not in epoch[-1].hooks:
            epoch[-1].hooks.append(event.hook)
    seen = set(before) | {hook for segment in epoch for hook in segment.hooks}
    return Lifecycle(
        before=before,
        epoch=epoch,
        after=_unique([event.hook for event in events if event.hook not in seen]),
        failure=simulate([], epochs=1, batches=1, fail_at="on_batch_end").events[-1].hook,
    )


def lifecycle_diagram() -> str:
    """The order of the hooks as the reference loop calls them, as an indented text diagram.

    The order comes from :func:`lifecycle`; the arguments and the notes come from the hookspecs.
    """
    order = lifecycle()
    lines: list[tuple[str, str | None]] = [(_call(hook), hook) for hook in order.before]
    lines.append(("for each epoch (epoch = 0, 1, ...):", None))
    for segment in order.epoch:
        indent = "    "
        if segment.loop is not None:
            lines.append((f"    for each {segment.loop} of the epoch ({segment.loop} = 0, 1, ...):", None))
            indent = "        "
        lines += [(f"{indent}{_call(hook)}", hook) for hook in segment.hooks]
    lines += [(_call(hook), hook) for hook in order.after]
    lines.append(("", None))
    lines.append(("if a hook, a training step or the validation raises:", None))
    lines.append((_call(order.failure), order.failure))
    width = max(len(text) for text, hook in lines if hook) + 3
    return "\n".join((f"{text:<{width}}# {_purpose(hook)}" if hook else text).rstrip() for text, hook in lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def lifecycle_svg() -> str:
    """The same order as :func:`lifecycle_diagram`, drawn: an SVG made at build time, without any download or tool.

    Each hook is a box (its purpose as a tooltip); the epoch and batch loops are dashed frames, each with an arrow
    back to its start; the cleanup hook stands apart, below. Lines and text take the page's colour (light or dark).
    """
    order = lifecycle()
    width, box_width, box_height, gap = 550, 300, 30, 14
    centre = 300  # right of the loops' labels
    frames = {1: (20, 530), 2: (50, 500)}  # (left, right) of the epoch and the batch loops
    parts: list[str] = []
    y = 14
    previous_bottom: int | None = None

    def box(hook: str, *, dashed: bool = False) -> None:
        nonlocal y, previous_bottom
        if previous_bottom is not None:
            parts.append(
                f'<line x1="{centre}" y1="{previous_bottom}" x2="{centre}" y2="{y - 2}" '
                'stroke="currentColor" marker-end="url(#sara-arrow)"/>'
            )
        left = centre - box_width // 2
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        parts.append(
            f"<g><title>{_escape(_purpose(hook))}</title>"
            f'<rect x="{left}" y="{y}" width="{box_width}" height="{box_height}" rx="6" fill="none" '
            f'stroke="currentColor"{dash}/>'
            f'<text x="{centre}" y="{y + 20}" text-anchor="middle">{_escape(_call(hook))}</text></g>'
        )
        previous_bottom = y + box_height
        y += box_height + gap

    def frame(level: int, top: int, label: str, again: str, again_from: int | None = None) -> int:
        """Draw a loop's frame from ``top`` to here and return its bottom.

        ``again`` labels the arrow back to its start, below ``again_from`` (an inner frame's bottom) when given.
        """
        left, right = frames[level]
        bottom = y - gap + 10
        middle = (max(top, again_from or top) + bottom) // 2
        parts.append(
            f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" rx="10" fill="none" '
            'stroke="currentColor" stroke-opacity="0.55" stroke-dasharray="6 4"/>'
            f'<text x="{left + 10}" y="{top + 17}" class="sara-label">{_escape(label)}</text>'
            f'<path d="M {right - 14} {bottom - 12} V {top + 30}" stroke="currentColor" fill="none" '
            'marker-end="url(#sara-arrow)"/>'
            f'<text x="{right - 20}" y="{middle}" text-anchor="middle" class="sara-label" '
            f'transform="rotate(-90 {right - 20} {middle})">{_escape(again)}</text>'
        )
        return bottom

    for hook in order.before:
        box(hook)
    epoch_top = y - 4
    y += 22
    inner_bottom: int | None = None
    for segment in order.epoch:
        if segment.loop is None:
            for hook in segment.hooks:
                box(hook)
            continue
        loop_top = y - 4
        y += 22
        for hook in segment.hooks:
            box(hook)
        y += 6
        inner_bottom = frame(
            2, loop_top, f"for each {segment.loop} ({segment.loop} = 0, 1, ...)", f"next {segment.loop}"
        )
        y += 10
    y += 6
    frame(1, epoch_top, "for each epoch (epoch = 0, 1, ...)", "next epoch", again_from=inner_bottom)
    y += 10
    for hook in order.after:
        box(hook)
    y += 16
    parts.append(
        f'<text x="{centre}" y="{y}" text-anchor="middle" class="sara-label">'
        "if a hook, a training step or the validation raises:</text>"
    )
    y += 10
    previous_bottom = None
    box(order.failure, dashed=True)
    height = y
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'role="img" aria-labelledby="sara-lifecycle-title" class="sara-lifecycle">'
        '<title id="sara-lifecycle-title">The order of the hooks in a training</title>'
        '<defs><marker id="sara-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="currentColor"/></marker></defs>'
        "<style>.sara-lifecycle text { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; "
        "font-size: 13px; fill: currentColor; } .sara-lifecycle .sara-label { font-family: inherit; "
        "font-size: 12px; fill-opacity: 0.8; }</style>" + "".join(parts) + "</svg>"
    )


class HookRow(NamedTuple):
    """One hook, for the table of hooks."""

    name: str
    arguments: str
    purpose: str


def hook_rows() -> list[HookRow]:
    """Every hook of the hookspecs, in their order: name, arguments, and when it is called."""
    from altametris.sara.core.hookspecs import HOOKS

    return [
        HookRow(name, ", ".join(spec.argnames) or "(none)", " ".join(spec.doc.split("\n\n", 1)[0].split()))
        for name, spec in HOOKS.items()
    ]


# -- commands --------------------------------------------------------------------------------------------------------


class CommandRun(NamedTuple):
    """A command line, what it printed (standard output and error, interleaved) and its exit status."""

    command: str
    output: str
    status: int


def run_command(command: str, *, files: Sequence[str] = (), timeout: float = 300.0) -> CommandRun:
    """Run ``sara-callbacks ...`` (through ``python -m altametris.sara.core``) in a new empty folder.

    Args:
        command: the command line as a user types it, starting with ``sara-callbacks``.
        files: files of the repository (paths relative to it) to copy into the folder first, by name.
        timeout: the longest the command may take.
    """
    words = shlex.split(command)
    if not words or words[0] != PROGRAM:
        raise ValueError(f"only {PROGRAM} commands are run, got {command!r}")
    with tempfile.TemporaryDirectory(prefix="sara-docs-") as folder:
        for name in files:
            shutil.copy(ROOT / name, Path(folder) / Path(name).name)
        env = {**os.environ, "COLUMNS": "120", "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}  # as on a terminal
        env.pop("PYTHONWARNINGS", None)
        done = subprocess.run(
            [sys.executable, "-m", "altametris.sara.core", *words[1:]],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = done.stdout.replace(os.path.realpath(folder), "~/project").replace(folder, "~/project")
    import altametris.sara.core

    package = str(Path(altametris.sara.core.__file__).parent)
    site = f".venv/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages/altametris/sara/core"
    output = output.replace(sys.executable, ".venv/bin/python").replace(package, site)
    return CommandRun(command, output.rstrip("\n"), done.returncode)


# -- configs ---------------------------------------------------------------------------------------------------------


def _toml(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib.loads(text)


def config_views(toml_text: str) -> tuple[str, str]:
    """A TOML config and the same config written in YAML (``yaml.safe_dump``, keys in their order)."""
    import yaml

    data = _toml(toml_text)
    return toml_text.strip("\n"), yaml.safe_dump(data, sort_keys=False, default_flow_style=False).strip("\n")


def config_problems(data: object) -> list[str]:
    """What SARA finds wrong with a config (its callbacks, and its ``[demo]`` table when there is one)."""
    from altametris.sara.core.config import check_config

    if isinstance(data, str):
        data = _toml(data)
    problems = [str(problem) for problem in check_config(data).problems]  # type: ignore[arg-type]
    if isinstance(data, dict) and "demo" in data:
        from altametris.sara.core.cli import demo
        from altametris.sara.core.exceptions import SaraError

        try:
            demo._settings(data["demo"], "config", None)
        except SaraError as error:
            problems.append(str(error))
    return problems


# -- plugins and modules ---------------------------------------------------------------------------------------------


class BuiltinPlugin(NamedTuple):
    """One plugin that this distribution registers."""

    name: str
    target: str
    factory: Any


def builtin_plugins() -> list[BuiltinPlugin]:
    """The ``sara.callbacks`` entry points of this distribution, sorted by name, loaded."""
    from altametris.sara.core.discovery import GROUP, find_plugin

    if sys.version_info >= (3, 10):
        from importlib.metadata import distribution
    else:  # pragma: no cover
        from importlib_metadata import distribution
    found = []
    for entry in distribution(DISTRIBUTION).entry_points:
        if entry.group == GROUP:
            found.append(BuiltinPlugin(entry.name, entry.value, find_plugin(entry.name).load()))
    return sorted(found)


class ParameterRow(NamedTuple):
    """One parameter of a built-in, as its section's table shows it (reStructuredText inline markup)."""

    name: str
    annotation: str
    default: str
    choices: str


def parameter_rows(factory: object) -> list[ParameterRow]:
    """A plugin's parameters as its table shows them: name, type, default, choices (as ``sara-callbacks show``)."""
    from altametris.sara.core.discovery._describe import parameters

    return [
        ParameterRow(
            f"``{item['name']}``",
            f"``{item['annotation']}``",
            "*required*" if item["required"] else f"``{item['default_text']}``",
            ", ".join(f"``{choice}``" for choice in item["choices_text"] or []) or "--",
        )
        for item in parameters(factory)  # type: ignore[arg-type]
    ]


def public_modules() -> list[str]:
    """Every public module of the packages (no leading underscore), each package first."""
    names = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names.append(package_name)
        names += [
            info.name
            for info in pkgutil.iter_modules(package.__path__, prefix=f"{package_name}.")
            if not info.name.rpartition(".")[2].startswith("_")
        ]
    return names


def reexports(package_name: str) -> list[tuple[str, str | None]]:
    """The names of a package's ``__all__`` and the public module that defines each (``None`` for its own)."""
    package = importlib.import_module(package_name)
    modules = [name for name in public_modules() if name.startswith(f"{package_name}.")]
    found = []
    for name in package.__all__:
        value = getattr(package, name)
        home = None
        for module_name in modules:
            module = importlib.import_module(module_name)
            if name in getattr(module, "__all__", ()) and getattr(module, name) is value:
                home = module_name
                break
        found.append((name, home))
    return found
