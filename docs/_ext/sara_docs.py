"""The Sphinx extension of these docs: pages whose content comes from the code at build time, so it cannot drift.

Directives (usable from Markdown through MyST and from reStructuredText):

``sara-lifecycle``
    the hook order, from a recorded run of the reference loop: drawn as an SVG generated at build time (no tool, no
    download), then as a text diagram;
``sara-hooks``
    a table of every hook, its arguments and when it is called, from the hookspecs;
``sara-command``
    a ``sara-callbacks`` command line and its real output; options ``:files:`` (repository files copied into the
    empty folder it runs in) and ``:exit:`` (the expected exit status, 0 by default: another one fails the build);
``sara-config``
    a TOML config shown next to the same config in YAML; the build fails if SARA refuses it;
``sara-builtins``
    one section per plugin that this distribution registers: its documentation, parameters and hooks, read as
    ``sara-callbacks show`` reads them.

At ``builder-inited`` it writes ``api/``: one page per public module (``automodule`` over its ``__all__``).

The config value ``sara_optional_pages`` names pages that another part of the project writes: until such a page
exists, its toctree lines and the Markdown links to it are left out of the sources as they are read, so that the
build stays clean before and after it lands.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any, ClassVar

import sara_render
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

_logger = logging.getLogger(__name__)


def _literal(text: str, language: str) -> nodes.literal_block:
    block = nodes.literal_block(text, text)
    block["language"] = language
    return block


class Lifecycle(SphinxDirective):
    """``sara-lifecycle``: the hook order, from a recorded run, drawn (an SVG made here) and as text."""

    def run(self) -> list[nodes.Node]:
        """The drawing (HTML only), then the text diagram, which every builder shows."""
        drawing = nodes.container(classes=["sara-lifecycle-figure"])
        drawing += nodes.raw("", sara_render.lifecycle_svg(), format="html")
        note = "The same order as text, with each hook's arguments and what it is called for:"
        return [drawing, nodes.paragraph(note, note), _literal(sara_render.lifecycle_diagram(), "text")]


def _inline(text: str) -> list[nodes.Node]:
    """``text`` with its ````literal```` parts as literals."""
    parts = text.split("``")
    return [nodes.literal(part, part) if index % 2 else nodes.Text(part) for index, part in enumerate(parts) if part]


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], widths: tuple[int, ...]) -> nodes.table:
    table = nodes.table()
    group = nodes.tgroup(cols=len(header))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    for part, lines in ((nodes.thead(), [header]), (nodes.tbody(), rows)):
        group += part
        for cells in lines:
            row = nodes.row()
            part += row  # noqa: PLW2901 - docutils' way of appending a child
            for cell in cells:
                entry = nodes.entry()
                entry += nodes.paragraph("", "", *_inline(cell))
                row += entry
    return table


class Hooks(SphinxDirective):
    """``sara-hooks``: the table of hooks."""

    def run(self) -> list[nodes.Node]:
        """The table."""
        rows = [(f"``{row.name}``", row.arguments, row.purpose) for row in sara_render.hook_rows()]
        return [_table(("hook", "arguments", "called"), rows, (22, 18, 60))]


class Command(SphinxDirective):
    """``sara-command``: a command line and what it printed."""

    required_arguments = 1
    final_argument_whitespace = True
    option_spec: ClassVar[dict[str, Any]] = {"files": directives.unchanged, "exit": directives.nonnegative_int}

    def run(self) -> list[nodes.Node]:
        """Run the command; warn (an error with ``-W``) when its exit status is not the expected one."""
        files = [name.strip() for name in self.options.get("files", "").split(",") if name.strip()]
        for name in files:
            self.env.note_dependency(str(sara_render.ROOT / name))
        done = sara_render.run_command(self.arguments[0], files=files)
        expected = self.options.get("exit", 0)
        if done.status != expected:
            _logger.warning(
                "%r exited with %d, expected %d:\n%s",
                done.command,
                done.status,
                expected,
                done.output,
                location=self.get_location(),
            )
        text = f"$ {done.command}\n{done.output}"
        if done.status:
            text += f"\n$ echo $?\n{done.status}"
        return [_literal(text, "console")]


class Config(SphinxDirective):
    """``sara-config``: a TOML config next to the same config in YAML, checked by SARA."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        """The two views; warn (an error with ``-W``) for every problem SARA finds."""
        text = "\n".join(self.content)
        try:
            problems = sara_render.config_problems(text)
        except Exception as error:
            problems = [f"{type(error).__name__}: {error}"]
        for problem in problems:
            _logger.warning("config refused: %s", problem, location=self.get_location())
        toml_text, yaml_text = sara_render.config_views(text)
        pair = nodes.container(classes=["sara-side-by-side"])
        for caption, body, language in (("TOML", toml_text, "toml"), ("YAML", yaml_text, "yaml")):
            column = nodes.container(classes=["sara-column"])
            column += nodes.paragraph("", "", nodes.strong(caption, caption), classes=["sara-caption"])
            column += _literal(body, language)
            pair += column
        return [pair]


class Builtins(SphinxDirective):
    """``sara-builtins``: one section per plugin of this distribution."""

    def run(self) -> list[nodes.Node]:
        """The sections, parsed as reStructuredText."""
        from altametris.sara.core.discovery._describe import hooks as _hooks_of
        from docutils.statemachine import StringList

        lines: list[str] = []
        for plugin in sara_render.builtin_plugins():
            module, _, attribute = plugin.target.partition(":")
            title = f"``{plugin.name}``"
            hooks = _hooks_of(plugin.factory) or []
            lines += [f".. _builtin-{plugin.name}:", "", title, "-" * len(title), ""]
            summary = (inspect.getdoc(plugin.factory) or "").split("\n", 1)[0]
            lines += [summary, ""]
            lines += [
                f':enable: ``callbacks = ["{plugin.name}"]``'
                if not _required(plugin.factory)
                else f':enable: ``{{ name = "{plugin.name}", params = {{ ... }} }}`` (required: '
                + ", ".join(f"``{name}``" for name in _required(plugin.factory))
                + ")",
                f":class: :py:class:`{module}.{attribute}`",
                f":hooks: {', '.join(f'``{hook}``' for hook in hooks) or 'none'}",
                "",
            ]
            rows = sara_render.parameter_rows(plugin.factory)
            if rows:
                lines += [".. list-table::", "   :header-rows: 1", "   :widths: 22 30 24 24", ""]
                lines += ["   * - parameter", "     - type", "     - default", "     - choices"]
                for row in rows:
                    lines += [f"   * - {row.name}", *(f"     - {cell}" for cell in row[1:])]
                lines.append("")
            lines += [f".. autoclass:: {module}.{attribute}", "   :no-index:", ""]
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="<sara-builtins>"), container)
        return list(container.children)


def _required(factory: object) -> list[str]:
    from altametris.sara.core.discovery._describe import parameters as _parameters

    return [str(item["name"]) for item in _parameters(factory) if item["required"]]  # type: ignore[arg-type]


# -- the API reference -----------------------------------------------------------------------------------------------


def _module_page(name: str) -> str:
    title = f"``{name}``"
    lines = [title, "=" * len(title), ""]
    if name in sara_render.PACKAGES:
        lines += [f".. automodule:: {name}", "   :no-members:", ""]
        exported = sara_render.reexports(name)
        if exported:
            lines += ["Its public names, each documented in the module that defines it:", ""]
            lines += [".. list-table::", "   :header-rows: 1", "", "   * - name", "     - defined in"]
            for item, home in exported:
                target = f":py:obj:`~{home}.{item}`" if home else f"``{item}``"
                where = f":py:mod:`{home}`" if home else "the package itself"
                lines += [f"   * - {target}", f"     - {where}"]
            lines.append("")
    else:
        lines += [f".. automodule:: {name}", "   :members:", "   :show-inheritance:", ""]
    return "\n".join(lines)


def _write_api(app: Any) -> None:
    folder = Path(app.srcdir) / "api"
    folder.mkdir(exist_ok=True)
    modules = sara_render.public_modules()
    pages = {f"{name}.rst": _module_page(name) for name in modules}
    toctree = "\n".join(f"   {name}" for name in modules)
    pages["index.rst"] = (
        "API reference\n=============\n\n"
        "Every public module of ``altametris.sara.core`` and ``altametris.sara.plugins``, with exactly the names of "
        "its ``__all__``. Generated from the docstrings when the documentation is built.\n\n"
        f".. toctree::\n   :maxdepth: 1\n\n{toctree}\n"
    )
    for stale in folder.glob("*.rst"):
        if stale.name not in pages:
            stale.unlink()
    for file_name, text in pages.items():
        path = folder / file_name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def optional_pages(app: Any, docname: str, source: list[str]) -> None:
    """Leave out the toctree lines of, and the links to, the optional pages that do not exist yet."""
    for page in app.config.sara_optional_pages:
        if any((Path(app.srcdir) / f"{page}{suffix}").exists() for suffix in app.config.source_suffix):
            continue
        text = re.sub(rf"^{re.escape(page)}[ \t]*\n", "", source[0], flags=re.MULTILINE)
        source[0] = re.sub(rf"\[([^\]]+)\]\({re.escape(page)}\.md(#[^)]*)?\)", r"\1", text)


def setup(app: Any) -> dict[str, Any]:
    """Register the directives, the generation of the API pages and the optional pages."""
    app.add_config_value("sara_optional_pages", [], "env")
    app.connect("source-read", optional_pages)
    app.add_directive("sara-lifecycle", Lifecycle)
    app.add_directive("sara-hooks", Hooks)
    app.add_directive("sara-command", Command)
    app.add_directive("sara-config", Config)
    app.add_directive("sara-builtins", Builtins)
    app.connect("builder-inited", _write_api)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
