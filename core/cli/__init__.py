"""The ``sara-callbacks`` command: list, show and check plugins and configs, and run the demo.

Subcommands:

* ``list [--json]``: every plugin of the ``sara.callbacks`` group (name, distribution, version, target), read from
  metadata only: nothing is imported, so a broken plugin cannot stop the listing.
* ``show NAME [--json]``: what a plugin is: its docstring, its parameters, the hooks it overrides (imports it).
* ``check CONFIG [--allow-import-paths]``: validates a config as ``CallbackManager.from_config`` would, building
  every callback, and prints each problem on its own line (``path: where: reason``); exit 0 when valid, 1 otherwise.
  A valid config's callbacks are listed in order, each with its error policy when it is not ``raise``.
* ``demo [--config PATH] [--epochs N] [--output DIR]``: a small training run driven through the manager;
  ``demo --resume RUN_DIR`` continues a stopped, killed or preempted run in place; ``demo --print-config`` writes
  its embedded config to stdout instead, to start a config of one's own.

Errors of the library print ``sara-callbacks: error: <message>`` and exit 1; bad arguments exit 2; any other error
prints one line and the hint to re-run with ``--traceback``.

Example:
    >>> from altametris.sara.core.cli import main
    >>> main(["check", "missing.toml"])  # doctest: +ELLIPSIS
    missing.toml: no such config file (current directory: ...)
    1
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Callable

from .. import __version__, _state
from .._failures import policy_of
from ..base_callback import CallbackManager
from ..config import check_config
from ..control import Preempted
from ..discovery import GROUP, _check_name, _describe, available_plugins, find_plugin
from ..exceptions import OrderError, SaraError
from ..messages import PATH_LIMIT, describe_error, one_line, plain_text, safe_repr
from ..order import declares_order, names_of, resolve, rules
from ..trainers import trainer_names, unsupplied, unsupplied_message
from ..triggers import TRIGGER_KEYS, trigger_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..base_callback import BaseCallback
    from ..discovery import PluginInfo

__all__ = ["main"]

_PROG = "sara-callbacks"


def _out(text: str = "") -> None:
    print(text, file=sys.stdout)


_LINE_LIMIT = 1_800
"""The longest message line printed as it is; a longer one, or one holding a control character, is escaped and cut."""


# -- list ------------------------------------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    plugins = available_plugins()
    counts: dict[str, int] = {}
    for info in plugins:
        counts[info.name] = counts.get(info.name, 0) + 1
    if args.json:
        import json

        rows = [{**info._asdict(), "clash": counts[info.name] > 1} for info in plugins]
        _out(json.dumps(rows, indent=2))
        return 0
    if not plugins:
        python = plain_text(sys.executable, PATH_LIMIT)
        _out(f"no plugin is installed in the entry-point group {GROUP!r} (for {python})")
        return 0
    header = ("name", "distribution", "version", "target")
    rows_text = [
        (
            plain_text(info.name, 100) + (" !" if counts[info.name] > 1 else ""),
            plain_text(info.distribution or "?", 100),
            plain_text(info.version or "?", 100),
            plain_text(info.target, 100),
        )
        for info in plugins
    ]
    widths = [max(len(row[column]) for row in [header, *rows_text]) for column in range(3)]
    for row in [header, *rows_text]:
        _out("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    for name in (name for name, count in counts.items() if count > 1):
        owners = ", ".join(plain_text(info.requirement or "?", 100) for info in plugins if info.name == name)
        _out(
            f"! {safe_repr(name)} is registered by {counts[name]} distributions ({owners}): "
            "using it is an error until all but one are uninstalled"
        )
    for info in plugins:
        why = _check_name(info.name)
        if why is not None:
            _out(
                f"! {safe_repr(info.name)} ({plain_text(info.requirement or '?', 100)}) "
                f"is not a valid plugin name ({why}): "
                "a config cannot enable it"
            )
    return 0


# -- show ------------------------------------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    info: PluginInfo = find_plugin(args.name)
    factory = info.load()
    doc = _describe.description(factory)
    kind = "a BaseCallback subclass" if isinstance(factory, type) else "a factory returning a BaseCallback"
    parameters = _describe.parameters(factory)
    hooks = _describe.hooks(factory)
    if args.json:
        import json

        _out(
            json.dumps({**info._asdict(), "kind": kind, "doc": doc, "parameters": parameters, "hooks": hooks}, indent=2)
        )
        return 0
    _out(f"{plain_text(info.name, 100)} ({plain_text(info.requirement or 'no distribution', 100)})")
    _out(f"target: {plain_text(info.target, 100)} ({kind})")
    _out()
    for line in doc.splitlines() or ["no description"]:  # the plugin's words: escaped as any text from outside
        _out(plain_text(line, _LINE_LIMIT))
    _out()
    _out("parameters:" if parameters else "parameters: none")
    for parameter in parameters:
        _out(f"  {plain_text(_describe.parameter_line(parameter), _LINE_LIMIT)}")
    if hooks is None:
        _out("hooks: unknown until built (a factory that needs parameters)")
    else:
        _out(f"hooks: {', '.join(hooks) if hooks else 'none'}")
    _out(f"when: every hook, unless its config item sets when = {_WHEN_EXAMPLE} (keys: {', '.join(TRIGGER_KEYS)})")
    return 0


_WHEN_EXAMPLE = '"100ba" or { every_n_epochs = 2, from_epoch = 5 }'
"""How ``show`` tells that any plugin's item may carry a trigger."""


# -- check -----------------------------------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    report = check_config(args.config, allow_import_paths=args.allow_import_paths)
    shown = plain_text(args.config, PATH_LIMIT)  # as the problems' own lines name the file
    for problem in report.problems:
        _out(_one_line(problem))
    for warning in _manager_warnings(report.callbacks):
        _out(f"{shown}: warning: {_one_line(warning)}")
    if args.trainer is not None:  # the declaration only: the framework is not imported
        for name, callback in zip(report.names, report.callbacks):
            for hook in unsupplied(callback, args.trainer):
                _out(f"{shown}: warning: {plain_text(unsupplied_message(name, hook, args.trainer), _LINE_LIMIT)}")
    if not report.ok:
        count = len(report.problems)
        print(f"{shown}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    disabled = f"; {len(report.disabled)} disabled: {_summary(report.disabled)}" if report.disabled else ""
    count = len(report.callbacks)
    described = [_with_policy(name, callback) for name, callback in zip(report.names, report.callbacks)]
    names = f": {_summary(described)}" if described else ""
    _out(f"{shown}: OK, {count} callback{'s' if count != 1 else ''}{names}{disabled}")
    called = resolve(report.callbacks)
    if called != list(report.callbacks) or any(map(declares_order, report.callbacks)):
        # the order the manager will call them in, and why it is not the config's
        shown_order = [name or type(callback).__qualname__ for callback, name in zip(called, names_of(called))]
        _out(f"{shown}: call order: {plain_text(', '.join(shown_order), _LINE_LIMIT)}")
        for rule in rules(report.callbacks):
            _out(f"  {plain_text(rule, _LINE_LIMIT)}")
    return 0


_LISTED = 10
"""How many names ``check`` lists before it summarises the rest."""


def _summary(names: Sequence[str]) -> str:
    """``names`` joined, or for a long list the first ones and a count of the rest by name, most frequent first.

    Example:
        >>> _summary(["timer"] * 2 + ["history"] * 30 + ["csv_logger"] * 2)
        'timer, timer, history, ..., history, ... and 24 more (history x22, csv_logger x2)'
    """
    if len(names) <= _LISTED:
        return ", ".join(names)
    import collections

    rest = collections.Counter(names[_LISTED:])
    counted = ", ".join(f"{name} x{times}" for name, times in rest.most_common(5))
    others = f", {len(rest) - 5} other names" if len(rest) > 5 else ""
    return f"{', '.join(names[:_LISTED])}, ... and {len(names) - _LISTED} more ({counted}{others})"


def _with_policy(name: str, callback: BaseCallback) -> str:
    """``name``, with the error policy, state key and trigger its item set: ``"csv_logger (on_error=warn)"``."""
    policy = policy_of(callback)
    shown = [] if policy == "raise" else [f"on_error={policy}"]
    key = _state.configured_key(callback)
    if key is not None:
        shown.append(f"state_key={key}")
    trigger = trigger_of(callback)
    if trigger is not None:
        shown.append(f"when: {trigger}")
    name = plain_text(name, 100)
    return plain_text(f"{name} ({', '.join(shown)})", _LINE_LIMIT) if shown else name


def _manager_warnings(callbacks: Sequence[BaseCallback]) -> list[Warning]:
    """What ``from_config`` would warn about once the callbacks are registered (a misspelt hook, say)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            CallbackManager(callbacks)
        except OrderError:  # a cycle: already one of the report's problems
            return []
    return [warning.message for warning in caught if isinstance(warning.message, Warning)]


def _one_line(error: BaseException) -> str:
    """An error or warning as one line for the terminal: white space folded, control characters escaped."""
    try:
        text = str(error)
    except Exception:
        text = type(error).__qualname__
    return plain_text(one_line(text), _LINE_LIMIT)


# -- demo ------------------------------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo  # its training imports csv, json, logging ...: only when the demo runs

    if args.print_config:
        from .demo import embedded_config

        sys.stdout.write(embedded_config())
        return 0
    keys = ("config", "epochs", "output", "resume")
    options = {key: getattr(args, key) for key in keys if getattr(args, key) is not None}
    try:
        run_demo(**options, profile=args.profile or None, stream=sys.stdout)
    except Preempted as preempted:  # run_demo printed how to resume
        return int(preempted.code) if isinstance(preempted.code, int) else 143
    return 0


# -- the parser and main ---------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--traceback", action="store_true", default=argparse.SUPPRESS, help="show the full traceback of an error"
    )
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Training-loop callbacks by name: list and inspect plugins, check configs, run the demo.",
        parents=[common],
    )
    parser.add_argument(
        "--version", action="version", version=f"{_PROG} {__version__} (Python {sys.version.split()[0]})"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command", required=True)

    def command(name: str, run: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[common])
        sub.set_defaults(run=run)
        return sub

    listing = command("list", _list, "list every installed plugin (imports nothing)")
    listing.add_argument("--json", action="store_true", help="print JSON for machines")
    show = command("show", _show, "show a plugin's documentation, parameters and hooks (imports it)")
    show.add_argument("name", metavar="NAME", help="the plugin's name, as `list` shows it")
    show.add_argument("--json", action="store_true", help="print JSON for machines")
    check = command("check", _check, "validate a config file without training; exit 1 on any problem")
    check.add_argument("config", metavar="CONFIG", help="a .toml, .yaml/.yml or .json config file")
    check.add_argument(
        "--allow-import-paths", action="store_true", help="also accept 'module:Class' items that no plugin registers"
    )
    check.add_argument(
        "--trainer",
        metavar="NAME",
        choices=trainer_names(),
        help=f"warn about hooks that this trainer never calls (one of: {', '.join(trainer_names())})",
    )
    demo = command("demo", _demo, "run a small training with callbacks enabled by name, and print its run folder")
    source = demo.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="PATH", help="a config file (default: the embedded demo config)")
    source.add_argument(
        "--print-config",
        action="store_true",
        help="write the embedded demo config to stdout and exit (sara-callbacks demo --print-config > my.toml)",
    )
    demo.add_argument("--epochs", metavar="N", type=_positive_int, help="number of epochs")
    demo.add_argument(
        "--output", metavar="DIR", help="a new or empty folder to write the run into (default: runs/<timestamp>)"
    )
    demo.add_argument(
        "--resume", metavar="RUN_DIR", help="continue a stopped, killed or preempted run in place, with its own config"
    )
    demo.add_argument(
        "--profile",
        action="store_true",
        help="time every callback's hooks: print the table at the end, write timings.json into the run folder",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911 - one exit code per outcome
    """Run ``sara-callbacks`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    Returns:
        0 on success, 1 when the command failed (a problem in a config, an error of the library or any other),
        2 for arguments the command does not accept.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help, --version and usage errors: argparse has printed what it had to
        status = exit_request.code
        return status if isinstance(status, int) else (0 if status is None else 2)
    show_traceback = getattr(args, "traceback", False)
    try:
        code: int = args.run(args)
    except SaraError as error:
        if show_traceback:
            import traceback

            traceback.print_exc()
        print(f"{_PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (``sara-callbacks list | head``): not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if show_traceback:
            import traceback

            traceback.print_exc()
            return 1
        described = plain_text(one_line(describe_error(error)), _LINE_LIMIT)
        print(f"{_PROG}: unexpected error: {described} (re-run with --traceback to see where)", file=sys.stderr)
        return 1
    return code
