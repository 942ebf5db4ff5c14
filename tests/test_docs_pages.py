"""Every example of the documentation pages runs, so that the docs cannot drift from the code.

The docstrings' examples are run by ``test_docs.py``; this file runs the pages of ``docs/``, block by block, in page
order, each page in its own empty folder with the example plugin (``examples/sara-plugin-example``) installed:

* ``python`` blocks are executed, and what they print must match their ``# prints: ...`` comments;
* ``pycon`` blocks are doctests (ellipsis and whitespace-insensitive), sharing the page's namespace;
* ``toml``, ``yaml`` and ``json`` blocks must parse; a config (a ``callbacks`` key) must pass
  :func:`~altametris.sara.core.config.check_config`, its ``[demo]`` table included, unless it has the class
  ``sara-invalid`` (a mistake shown on purpose), which it must fail; a block with a file name as caption is written
  into the folder, for the blocks after it;
* ``sara-config`` blocks are TOML configs, checked the same way;
* ``console`` blocks run their ``$ sara-callbacks ...`` lines and compare the output; setup lines (``pip``,
  ``mkdir``, ``cd`` ...) are the reader's and are skipped.

The parts that the docs generate at build time (``sara-command``, ``sara-lifecycle``, ``sara-builtins``) are
checked here through the helpers that generate them.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
import yaml
from altametris.sara.core import exceptions, hookspecs

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .conftest import FakeSite

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLE = ROOT / "examples" / "sara-plugin-example"
PAGES = sorted(path.name for path in DOCS.glob("*.md"))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# Lines of console blocks that set up the reader's machine: shown, not run (the test installs what they install).
SETUP_COMMANDS = ("python3 -m venv", "python -m venv", "pip ", ".venv/bin/pip ", "cd ", "mkdir ", "touch ", "pytest")
SETUP_COMMANDS += ("python -m build", "python -m pip ", "twine ", "git ")

sys.path.insert(0, str(DOCS / "_ext"))
import sara_render  # noqa: E402 - the docs' own helpers, importable without Sphinx


class Block(NamedTuple):
    """One fenced block of a Markdown page."""

    page: str
    line: int
    language: str
    directive: str | None
    argument: str
    options: dict[str, str]
    content: str


_FENCE = re.compile(r"^(`{3,}|~{3,})\s*(.*)$")


def blocks(page: str | Path) -> list[Block]:
    """The fenced blocks of ``docs/<page>`` (or of a path), with the MyST directive, its argument and options."""
    path = page if isinstance(page, Path) else DOCS / page
    page = path.name
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, info = opening.groups()
        start = index + 1
        end = start
        while end < len(lines) and not (
            lines[end].startswith(fence[0] * len(fence)) and not lines[end].strip(fence[0])
        ):
            end += 1
        body = lines[start:end]
        directive, argument = None, ""
        language = info.strip()
        options: dict[str, str] = {}
        if language.startswith("{"):
            directive, _, argument = language[1:].partition("}")
            argument = argument.strip()
            while body and body[0].startswith(":"):
                key, _, value = body.pop(0)[1:].partition(":")
                options[key.strip()] = value.strip()
            if body and not body[0].strip():
                body.pop(0)
            language = argument.split()[0] if directive == "code-block" and argument else directive
        found.append(Block(page, start, language, directive, argument, options, "\n".join(body) + "\n"))
        index = end + 1
    return found


# -- running one page --------------------------------------------------------------------------------------------------


class Page:
    """The state of one page being run: its namespace, its folder, the exit status of its last command."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.namespace: dict[str, Any] = {"__name__": "__docs__"}
        self.status = 0
        self.failures: list[str] = []

    def fail(self, block: Block, message: str) -> None:
        self.failures.append(f"docs/{block.page}, line {block.line} ({block.language}): {message}")

    def run(self, block: Block) -> None:
        caption = block.options.get("caption", "")
        if re.fullmatch(r"[\w./-]+\.(toml|ya?ml|json|py|cfg|txt)", caption):
            (self.folder / caption).parent.mkdir(parents=True, exist_ok=True)
            (self.folder / caption).write_text(block.content, encoding="utf-8")
        handler = getattr(self, f"_{block.language.replace('-', '_')}", None)
        if handler is not None:
            handler(block)

    def _python(self, block: Block) -> None:
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(block.content, f"docs/{block.page}:{block.line}", "exec"), self.namespace)
        promised = re.findall(r"# prints: (.*)$", block.content, flags=re.MULTILINE)
        if promised and output.getvalue().splitlines() != promised:
            self.fail(block, f"printed {output.getvalue()!r}, its comments say {promised!r}")
        for name in re.findall(r"^def (test_\w+)\(", block.content, flags=re.MULTILINE):
            self._run_test(block, name)

    def _run_test(self, block: Block, name: str) -> None:
        """Call a pytest test that the block defines, with the fixtures it names (the kit's and ``tmp_path``)."""
        import functools
        import inspect

        from altametris.sara.core.testing import EventRecorder, simulate

        folder = self.folder / name
        folder.mkdir()
        fixtures = {
            "tmp_path": folder,
            "sara_simulate": functools.partial(simulate, output_dir=folder),
            "sara_recorder": EventRecorder(),
        }
        test = self.namespace[name]
        try:
            test(**{parameter: fixtures[parameter] for parameter in inspect.signature(test).parameters})
        except Exception as error:
            self.fail(block, f"{name} failed: {type(error).__name__}: {error}")

    def _pycon(self, block: Block) -> None:
        test = doctest.DocTestParser().get_doctest(
            block.content, self.namespace, f"{block.page}:{block.line}", str(DOCS / block.page), block.line - 1
        )
        output = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=FLAGS)
        runner.run(test, out=output.write, clear_globs=False)
        self.namespace.update(test.globs)  # the test ran on a copy: the next blocks see what this one defined
        if runner.failures:
            self.fail(block, output.getvalue())

    def _config(self, block: Block, data: object) -> None:
        if isinstance(data, dict) and "callbacks" in data:
            problems = sara_render.config_problems(data)
            if "sara-invalid" in block.options.get("class", "").split():
                if not problems:
                    self.fail(block, "this config shows a mistake (class sara-invalid), yet SARA accepts it")
            elif problems:
                self.fail(block, f"SARA refuses this config: {problems}")

    def _toml(self, block: Block) -> None:
        self._config(block, tomllib.loads(block.content))

    def _yaml(self, block: Block) -> None:
        self._config(block, yaml.safe_load(block.content))

    def _json(self, block: Block) -> None:
        self._config(block, json.loads(block.content))

    def _sara_config(self, block: Block) -> None:
        self._toml(block)

    def _console(self, block: Block) -> None:
        commands: list[tuple[str, list[str]]] = []
        for line in block.content.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:], []))
            elif commands:
                commands[-1][1].append(line)
            elif line.strip():
                self.fail(block, f"output before any command: {line!r}")
        for command, expected in commands:
            self._command(block, command.split("  #")[0].strip(), "\n".join(expected))

    def _command(self, block: Block, command: str, expected: str) -> None:
        if command == "echo $?":
            actual = str(self.status)
        elif command.startswith("sara-callbacks"):
            from altametris.sara.core.cli import main

            output = io.StringIO()
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                self.status = main(shlex.split(command)[1:])
            actual = output.getvalue()
        elif command.startswith(SETUP_COMMANDS):
            return
        else:
            self.fail(block, f"the docs tests do not know how to run {command!r}: add it to SETUP_COMMANDS or run it")
            return
        checker = doctest.OutputChecker()
        if not checker.check_output(expected.strip() + "\n", actual.strip() + "\n", FLAGS):
            self.fail(block, f"$ {command}\nexpected:\n{expected}\ngot:\n{actual}")


@pytest.fixture
def example_installed(fake_site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """The example plugin distribution, as ``pip install`` leaves it: metadata in a site, package importable."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    fake_site.add_distribution(project["name"], project["version"], project["entry-points"]["sara.callbacks"])
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    yield fake_site
    for module in [name for name in sys.modules if name.startswith("sara_plugin_example")]:
        del sys.modules[module]


_REQUIRES = re.compile(r"^<!-- sara-requires: ([\w, ]+) -->", flags=re.MULTILINE)
"""A page's framework examples (the bridges' pages) run where the frameworks are: tox env ``bridges``."""


@pytest.mark.parametrize("page", PAGES)
def test_every_example_of_the_page_runs(
    page: str, example_installed: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings

    needs = _REQUIRES.search(_text(page))
    if needs and os.environ.get("SARA_REQUIRE_BRIDGES") != "1":
        for module in needs.group(1).split(","):
            pytest.importorskip(module.strip())
    monkeypatch.chdir(tmp_path)
    runner = Page(tmp_path)
    with warnings.catch_warnings():
        if needs:  # the frameworks' own deprecation and advice warnings are not the page's
            warnings.simplefilter("ignore")
        for block in blocks(page):
            runner.run(block)
    assert not runner.failures, "\n\n".join(runner.failures)


# -- what each page must cover -----------------------------------------------------------------------------------------


def _text(page: str) -> str:
    return (DOCS / page).read_text(encoding="utf-8")


def test_the_pages_have_runnable_examples() -> None:
    counted = {page: [block.language for block in blocks(page)] for page in PAGES}
    for page in ("quickstart.md", "concepts.md", "writing-callbacks.md", "testing.md", "errors.md"):
        assert "pycon" in counted[page] or "python" in counted[page], page
    assert "sara-config" in counted["config.md"]
    assert "console" in counted["publishing.md"]


def test_the_quickstart_shows_the_readmes_commands_and_example() -> None:
    readme = {block.language: block.content for block in reversed(blocks(ROOT / "README.md"))}
    quickstart = {block.language: block.content for block in reversed(blocks("quickstart.md"))}
    assert quickstart["bash"] == readme["bash"]
    assert quickstart["python"] == readme["python"]


def test_the_errors_page_shows_every_error_and_warning_of_the_library() -> None:
    headings = set(re.findall(r"^#{2,3} `(\w+)`", _text("errors.md"), flags=re.MULTILINE))
    assert set(exceptions.__all__) <= headings, sorted(set(exceptions.__all__) - headings)


def _quoted_names(page: str) -> set[str]:
    """The identifiers that appear in the page's inline code spans (`validate=False` gives `validate`, `False`)."""
    spans = re.findall(r"`([^`\n]+)`", _text(page))
    return {name for span in spans for name in re.findall(r"[A-Za-z_]\w*", span)}


def test_the_testing_page_documents_every_option_and_attribute_of_the_kit() -> None:
    import inspect

    from altametris.sara.core.base_callback import BaseCallback
    from altametris.sara.core.testing import EventRecorder, Recording, simulate

    wanted = {f"simulate({name})": name for name in list(inspect.signature(simulate).parameters)[1:]}
    for cls in (Recording, EventRecorder):
        attributes = re.findall(r"self\.([a-z]\w*)(?:: [^=]+)? = ", inspect.getsource(cls.__init__))
        members = [name for name in vars(cls) if not name.startswith("_") and not hasattr(BaseCallback, name)]
        wanted |= {f"{cls.__name__}.{name}": name for name in attributes + members}
    quoted = _quoted_names("testing.md")
    missing = sorted(shown for shown, name in wanted.items() if name not in quoted)
    assert not missing, missing
    assert len(wanted) > 20  # the parameters and attributes were found


def _command_lines(page: str | Path) -> list[str]:
    """The commands of a page's ``console`` and ``bash`` blocks, in page order (prompts and comments left out)."""
    lines = []
    for block in blocks(page):
        if block.language in ("console", "bash", "shell"):
            for line in block.content.splitlines():
                command = line.removeprefix("$ ").split("#", 1)[0].strip()
                if command and (block.language != "console" or line.startswith("$ ")):
                    lines.append(command)
    return lines


INSTALL_PAGES = [*PAGES, ROOT / "README.md", EXAMPLE / "README.md"]


@pytest.mark.parametrize("page", INSTALL_PAGES, ids=str)
def test_install_commands_work_while_the_distribution_is_not_on_the_package_index(page: str | Path) -> None:
    commands = _command_lines(page)
    by_name = [line for line in commands if re.search(r"pip install (-\S+ )*sara-callbacks(\s|$|[<>=\[])", line)]
    assert not by_name, f"{page}: `pip install sara-callbacks` finds nothing on the index: {by_name}"
    for tool, used in (("build", "-m build"), ("twine", "twine ")):
        first_use = next((index for index, line in enumerate(commands) if used in line), None)
        if first_use is not None:
            installed = any(re.search(rf"pip install .*\b{tool}\b", line) for line in commands[:first_use])
            assert installed, f"{page}: {tool} is used before the page says to install it"


def test_the_install_and_publishing_pages_say_how_to_get_the_distribution_meanwhile() -> None:
    for page in ("cli.md", "publishing.md"):
        assert "not on the Python Package Index yet" in _text(page), page
    publishing = _text("publishing.md")
    assert "--find-links" in publishing
    assert "sara-callbacks>=0.1" in publishing


@pytest.mark.parametrize("page", sorted(path.name for path in DOCS.glob("*.*") if path.suffix in (".md", ".rst")))
def test_a_source_with_generated_parts_says_at_its_top_where_the_built_page_is(page: str) -> None:
    text = _text(page)
    if not re.search(r"^(```\{sara-|\.\. sara-)", text, flags=re.MULTILINE):
        return
    top = "\n".join(text.splitlines()[:12])
    built = f"docs/_build/html/{Path(page).stem}.html"
    assert built in top, f"{page}: its first lines must say where the built page is ({built})"
    if page.endswith(".md"):  # a MyST comment: shown on a code host, hidden in the built page
        assert any(line.startswith("% ") and built in line for line in top.splitlines()), page


def test_the_tests_a_page_shows_are_of_the_classes_its_text_names() -> None:
    lines = _text("testing.md").splitlines()
    checked = 0
    for block in blocks("testing.md"):
        if block.language != "python" or "def test_" not in block.content:
            continue
        before = lines[: block.line - 1]
        while before and not before[-1].strip():
            before.pop()
        paragraph = []
        while before and before[-1].strip():
            paragraph.insert(0, before.pop())
        used = set(re.findall(r"^from \S+ import (?:.*, )?([A-Z]\w+)", block.content, flags=re.MULTILINE))
        named = set(re.findall(r"`([A-Z]\w+)`", " ".join(paragraph)))
        assert used <= named, f"testing.md, line {block.line}: the text before the tests names {named}, not {used}"
        checked += 1
    assert checked


def test_the_config_reference_names_every_key() -> None:
    from altametris.sara.core import config
    from altametris.sara.core.cli import demo

    text = _text("config.md")
    for key in ("callbacks", *config.ITEM_KEYS, *demo.DEFAULTS):
        assert f"`{key}`" in text, key


def test_the_command_line_page_runs_every_subcommand() -> None:
    from altametris.sara.core.cli import _parser

    shown = {block.argument.split()[1] for block in blocks("cli.md") if block.directive == "sara-command"}
    parser = _parser()
    subcommands = next(action for action in parser._actions if action.dest == "command").choices
    assert set(subcommands) <= shown


def test_the_publishing_page_walks_through_the_example_plugin_files() -> None:
    included = {block.argument for block in blocks("publishing.md") if block.directive == "literalinclude"}
    for path in ("pyproject.toml", "src/sara_plugin_example/metric_alert.py", "tests/test_metric_alert.py"):
        assert f"../examples/sara-plugin-example/{path}" in included, path
    for name in included:
        assert (DOCS / name).resolve().is_file(), name


def test_every_page_is_in_a_toctree() -> None:
    listed = set()
    for block in blocks("index.md"):
        if block.directive == "toctree":
            listed |= {line.strip() for line in block.content.splitlines() if line.strip()}
    pages = {path.stem for path in DOCS.glob("*.md")} | {path.stem for path in DOCS.glob("*.rst")}
    assert pages - {"index"} <= listed, sorted(pages - {"index"} - listed)


# -- what the docs generate at build time ------------------------------------------------------------------------------


def test_the_lifecycle_diagram_has_every_hook_once_in_the_order_of_the_loop() -> None:
    diagram = sara_render.lifecycle_diagram()
    order = [line.split("(")[0].strip() for line in diagram.splitlines() if line.strip().startswith("on_")]
    assert sorted(order) == sorted(hookspecs.HOOKS)
    assert order == [
        "on_checkpoint_load",
        "on_train_start",
        "on_epoch_start",
        "on_batch_start",
        "on_after_backward",
        "on_before_optimizer_step",
        "on_after_optimizer_step",
        "on_batch_end",
        "on_validation_start",
        "on_validation_batch_start",
        "on_validation_batch_end",
        "on_validation_end",
        "on_epoch_end",
        "on_checkpoint_save",
        "on_train_end",
        "on_exception",
    ]
    assert "    on_epoch_end(epoch, metrics)" in diagram
    assert "        on_batch_end(batch, metrics)" in diagram
    assert "        on_validation_batch_end(batch, metrics)" in diagram


def test_the_lifecycle_is_drawn_too_with_every_hook_once_in_the_order_of_the_loop_and_inside_its_loops() -> None:
    import xml.etree.ElementTree as ElementTree

    svg = ElementTree.fromstring(sara_render.lifecycle_svg())
    namespace = "{http://www.w3.org/2000/svg}"
    assert svg.tag == f"{namespace}svg"
    texts = [(element.text or "", element) for element in svg.iter(f"{namespace}text")]
    calls = [text for text, _ in texts if text.startswith("on_")]
    text_order = [line.strip().split("  #")[0].strip() for line in sara_render.lifecycle_diagram().splitlines()]
    assert calls == [line for line in text_order if line.startswith("on_")]  # the same hooks, order and arguments
    assert sorted(call.split("(")[0] for call in calls) == sorted(hookspecs.HOOKS)
    frames = {text: element for text, element in texts if text.startswith("for each")}
    assert set(frames) == {
        "for each epoch (epoch = 0, 1, ...)",
        "for each batch (batch = 0, 1, ...)",
        "for each validation batch (validation batch = 0, 1, ...)",
    }

    def y(text: str) -> float:
        return float(next(element for found, element in texts if found.startswith(text)).get("y", "0"))

    loops = [rect for rect in svg.iter(f"{namespace}rect") if rect.get("stroke-dasharray") == "6 4"]
    epoch_frame, batch_frame, validation_frame = sorted(loops, key=lambda rect: -float(rect.get("height", "0")))
    if float(batch_frame.get("y", "0")) > float(validation_frame.get("y", "0")):
        batch_frame, validation_frame = validation_frame, batch_frame
    for frame, inside, outside in (
        (epoch_frame, ["on_epoch_start", "on_batch_end", "on_epoch_end"], ["on_train_start", "on_train_end"]),
        (
            batch_frame,
            ["on_batch_start", "on_after_backward", "on_batch_end"],
            ["on_epoch_start", "on_validation_start"],
        ),
        (
            validation_frame,
            ["on_validation_batch_start", "on_validation_batch_end"],
            ["on_validation_start", "on_validation_end"],
        ),
    ):
        top = float(frame.get("y", "0"))
        bottom = top + float(frame.get("height", "0"))
        assert all(top < y(call) < bottom for call in inside)
        assert not any(top < y(call) < bottom for call in outside)
    assert "http" not in sara_render.lifecycle_svg().replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_the_hook_table_follows_the_hookspecs() -> None:
    rows = sara_render.hook_rows()
    assert [row.name for row in rows] == list(hookspecs.HOOKS)
    arguments = {row.name: row.arguments for row in rows}
    assert (arguments["on_epoch_end"], arguments["on_checkpoint_save"]) == ("epoch, metrics", "path")


def test_the_builtins_page_lists_every_plugin_of_the_distribution() -> None:
    from altametris.sara.core.discovery import available_plugins

    names = [plugin.name for plugin in sara_render.builtin_plugins()]
    assert names == sorted(info.name for info in available_plugins() if info.distribution == "sara-callbacks")
    assert ".. sara-builtins::" in _text("builtins.rst")


def test_the_builtins_page_shows_each_parameters_default_as_written_and_its_choices() -> None:
    from altametris.sara.plugins.checkpoint import Checkpoint
    from altametris.sara.plugins.early_stopping import EarlyStopping

    for factory in (EarlyStopping, Checkpoint):
        rows = {row.name: row for row in sara_render.parameter_rows(factory)}
        assert rows["``mode``"] == ("``mode``", "``str``", "``'min'``", "``'min'``, ``'max'``")
        assert rows["``monitor``"].choices == "--"


def test_command_outputs_are_real_and_folders_are_hidden() -> None:
    done = sara_render.run_command("sara-callbacks check train.toml", files=["examples/configs/train.toml"])
    assert done.status == 0
    assert done.output.startswith("train.toml: OK, 5 callbacks: progress_bar")
    missing = sara_render.run_command("sara-callbacks check missing.toml")
    assert (missing.status, missing.output.splitlines()[0]) == (
        1,
        "missing.toml: no such config file (current directory: ~/project)",
    )
    with pytest.raises(ValueError, match="only sara-callbacks commands"):
        sara_render.run_command("rm -rf /")


def test_a_config_is_shown_in_yaml_as_the_same_data() -> None:
    text = (ROOT / "examples" / "configs" / "train.toml").read_text(encoding="utf-8")
    toml_text, yaml_text = sara_render.config_views(text)
    assert yaml.safe_load(yaml_text) == tomllib.loads(toml_text)
    assert sara_render.config_problems('callbacks = ["histroy"]')[0].startswith("callbacks[0]: unknown plugin")
    assert sara_render.config_problems('callbacks = []\n[demo]\nepochs = "3"\n') == [
        "config: demo.epochs: expected a whole number >= 1, got '3'"
    ]


def test_the_api_reference_covers_every_public_module_and_name() -> None:
    modules = sara_render.public_modules()
    assert "altametris.sara.core.testing" in modules
    assert not any(part.startswith("_") for name in modules for part in name.split("."))
    exported = dict(sara_render.reexports("altametris.sara.core"))
    assert exported["fit"] == "altametris.sara.core.loop"
    assert exported["__version__"] is None


# -- trainers: the hook x trainer table ------------------------------------------------------------------------------


def _supplied_table() -> str:
    """The hook x trainer table of docs/trainers.md, as the declaration (``trainers.SUPPLIED``) makes it."""
    from altametris.sara.core.hookspecs import HOOKS
    from altametris.sara.core.trainers import STEP_HOOKS, SUPPLIED, trainer_names

    names = trainer_names()
    rows = ["| hook | " + " | ".join(f"`{name}`" for name in names) + " |", "| --- |" + " --- |" * len(names)]
    for hook in HOOKS:
        cells = [
            "no" if hook not in SUPPLIED[name] else "with `hooks`" if name == "fit" and hook in STEP_HOOKS else "yes"
            for name in names
        ]
        rows.append(f"| `{hook}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def test_the_trainers_hook_table_is_the_declaration_of_every_trainer() -> None:
    assert _supplied_table() in _text("trainers.md")


@pytest.mark.parametrize("trainer", ["lightning", "transformers", "keras"])
def test_each_trainer_page_names_the_hooks_its_bridge_does_not_supply(trainer: str) -> None:
    from altametris.sara.core.hookspecs import HOOKS
    from altametris.sara.core.trainers import SUPPLIED

    text = _text(f"trainers-{trainer}.md")
    missing = [hook for hook in HOOKS if hook not in SUPPLIED[trainer]]
    if not missing:
        assert "**Supplies every hook**" in text
    else:
        line = text.split("**Not supplied:**", 1)[1].split("(", 1)[0]
        assert [hook.strip(" `,") for hook in line.split(",")] == missing


def test_the_lightning_page_asks_no_config_change_for_a_resume() -> None:
    assert "append = true" not in _text("trainers-lightning.md")
