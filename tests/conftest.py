"""Shared fixtures. Each block belongs to one part of the suite; add new blocks below, leave the others as they are."""

from __future__ import annotations

import os
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest
from altametris.sara.core import discovery

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path

# ==================================================================================================================
# Plugins by name (discovery, config, command line): real distributions, written as `.dist-info` folders
# ==================================================================================================================

MODULE_PREFIX = "sara_test_"
"""Every module the fake distributions ship starts with this, so that each test can forget them afterwards."""


class FakeSite:
    """A directory on ``sys.path`` holding installed distributions: ``.dist-info`` folders and their modules.

    Each distribution is real as far as ``importlib.metadata`` and pip's view of an environment go: a ``METADATA``
    file with ``Name`` and ``Version``, an ``entry_points.txt``, and the modules its entry points name.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def add_distribution(
        self,
        name: str,
        version: str,
        plugins: Mapping[str, str],
        modules: Mapping[str, str] | None = None,
        *,
        group: str = discovery.GROUP,
        root: Path | None = None,
    ) -> Path:
        """Install distribution ``name==version`` registering ``plugins`` (name -> ``module:attr``) in ``group``.

        ``modules`` maps module names to their source (dedented). ``root`` installs into another directory.
        """
        where = root or self.root
        info = where / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: a test distribution\n\n"
            "A long description that a plugin listing has no reason to read.\n",
            encoding="utf-8",
        )
        lines = [f"[{group}]"] + [f"{plugin} = {target}" for plugin, target in plugins.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        for module, source in (modules or {}).items():
            (where / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        import importlib

        importlib.invalidate_caches()
        discovery.clear_cache()
        return info

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for a subprocess that sees these distributions (``PYTHONPATH``)."""
        path = os.pathsep.join(filter(None, [str(self.root), os.environ.get("PYTHONPATH", "")]))
        return {**os.environ, "PYTHONPATH": path, **extra}


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    """An empty site directory prepended to ``sys.path``, with the discovery cache cleared before and after."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    discovery.clear_cache()
    try:
        yield FakeSite(root)
    finally:
        discovery.clear_cache()
        for module in [name for name in sys.modules if name.startswith(MODULE_PREFIX)]:
            del sys.modules[module]


RECORDER = """
    from __future__ import annotations

    from typing import Any

    from altametris.sara.core.base_callback import BaseCallback

    EVENTS: list[tuple[str, str, Any]] = []


    class Recorder(BaseCallback):
        '''Records its hooks into EVENTS, with its label.'''

        def __init__(self, label: str = "recorder", every: int = 1) -> None:
            self.label = label
            self.every = every

        def on_train_start(self, **kwargs: Any) -> None:
            EVENTS.append((self.label, "on_train_start", self.every))

        def on_epoch_end(self, epoch: int, metrics: dict[str, float], **kwargs: Any) -> None:
            EVENTS.append((self.label, "on_epoch_end", epoch))


    def make_recorder(label: str = "made") -> Recorder:
        '''A factory: returns a Recorder.'''
        return Recorder(label=label)
"""

TYPED = """
    from __future__ import annotations

    import os
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from typing import TYPE_CHECKING, Any, Literal, Optional, Union

    from altametris.sara.core.base_callback import BaseCallback

    if TYPE_CHECKING:
        from somewhere_else import Unresolvable


    class Typed(BaseCallback):
        '''Takes one parameter of each kind of annotation.'''

        def __init__(
            self,
            count: int,
            *,
            ratio: float = 0.5,
            flag: bool = False,
            mode: Literal["min", "max"] = "min",
            names: list[str] | None = None,
            table: dict[str, int] | None = None,
            pair: tuple[int, int] = (0, 0),
            many: tuple[float, ...] = (),
            mapping: Mapping[str, float] = {},
            sequence: Sequence[str] = (),
            path: str | os.PathLike[str] = "out.txt",
            where: Optional[Path] = None,
            either: Union[int, str] = 0,
            opaque: Unresolvable = None,
            anything: Any = None,
        ) -> None:
            self.count = count
            self.ratio = ratio
            self.names = names
"""


@pytest.fixture
def plugin_site(fake_site: FakeSite) -> FakeSite:
    """A site with one distribution of each kind the discovery must handle.

    ================  ==========================  ==================================================================
    distribution      plugins                     what they are
    ================  ==========================  ==================================================================
    sara-test-good    recorder, recorder_factory  a BaseCallback subclass (records hooks into ``EVENTS``) and a
    1.0               typed                       factory; a constructor with every kind of annotation
    sara-test-broken  broken                      its module raises ``ModuleNotFoundError`` on import
    0.1
    sara-test-notcb   not_a_class, not_callable,  a plain class, an int, an instance
    0.2               an_instance
    sara-test-twin-a  twin                        the same name from two distributions
    1.0 / -twin-b 2.0
    sara-test-bad     bad_init, raises_sara,      a constructor raising ValueError; one raising a SaraError; a
    0.3               wrong_factory, weird        factory returning 42; a callable whose signature raises
    ================  ==========================  ==================================================================
    """
    site = fake_site
    site.add_distribution(
        "sara-test-good",
        "1.0",
        {
            "recorder": "sara_test_good:Recorder",
            "recorder_factory": "sara_test_good:make_recorder",
            "typed": "sara_test_typed:Typed",
        },
        {"sara_test_good": RECORDER, "sara_test_typed": TYPED},
    )
    site.add_distribution(
        "sara-test-broken",
        "0.1",
        {"broken": "sara_test_broken:Broken"},
        {"sara_test_broken": "import numpy_that_is_not_installed\n"},
    )
    site.add_distribution(
        "sara-test-notcb",
        "0.2",
        {
            "not_a_class": "sara_test_notcb:NotACallback",
            "not_callable": "sara_test_notcb:VALUE",
            "an_instance": "sara_test_notcb:INSTANCE",
        },
        {
            "sara_test_notcb": """
                from altametris.sara.core.base_callback import BaseCallback

                class NotACallback:
                    pass

                class Real(BaseCallback):
                    pass

                VALUE = 42
                INSTANCE = Real()
            """
        },
    )
    for suffix, version in (("a", "1.0"), ("b", "2.0")):
        site.add_distribution(
            f"sara-test-twin-{suffix}",
            version,
            {"twin": f"sara_test_twin_{suffix}:Twin"},
            {
                f"sara_test_twin_{suffix}": """
                    from altametris.sara.core.base_callback import BaseCallback

                    class Twin(BaseCallback):
                        pass
                """
            },
        )
    site.add_distribution(
        "sara-test-bad",
        "0.3",
        {
            "bad_init": "sara_test_bad:BadInit",
            "raises_sara": "sara_test_bad:RaisesSara",
            "wrong_factory": "sara_test_bad:wrong_factory",
            "weird": "sara_test_bad:WEIRD",
        },
        {
            "sara_test_bad": """
                from altametris.sara.core.base_callback import BaseCallback
                from altametris.sara.core.exceptions import PluginParameterError

                class BadInit(BaseCallback):
                    def __init__(self, window: int = 1) -> None:
                        raise ValueError(f"window must be positive, got {window}")

                class RaisesSara(BaseCallback):
                    def __init__(self) -> None:
                        raise PluginParameterError("raises_sara: nothing works", parameter="level")

                def wrong_factory():
                    return 42

                class Weird:
                    '''Callable, but asking for its signature fails: an unexpected error for the command line.'''

                    def __call__(self):
                        return BaseCallback()

                    @property
                    def __signature__(self):
                        raise RuntimeError("no signature today")

                WEIRD = Weird()
            """
        },
    )
    return site


# ==================================================================================================================
# Fuzzing (test_fuzz_config.py, test_crash_safety.py): hypothesis profiles, picked by SARA_HYPOTHESIS_PROFILE
# ==================================================================================================================

FUZZ_PROFILE = os.environ.get("SARA_HYPOTHESIS_PROFILE", "ci")
"""``ci`` (the default: hypothesis' 100 examples per test, scaled per test by the fuzz files) or ``fuzz`` (20 times
more, for ``tox -e fuzz``)."""


def _register_hypothesis_profiles() -> None:
    from hypothesis import HealthCheck, settings

    relaxed = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
    settings.register_profile("ci", max_examples=100, **relaxed)  # type: ignore[arg-type]
    settings.register_profile("fuzz", max_examples=2_000, **relaxed)  # type: ignore[arg-type]
    settings.load_profile(FUZZ_PROFILE)


_register_hypothesis_profiles()


# ==================================================================================================================
# Bridges (tests/test_integrations_*.py): the example plugin as a real installed distribution
# ==================================================================================================================

REQUIRE_BRIDGES = os.environ.get("SARA_REQUIRE_BRIDGES") == "1"
"""Set by tox env ``bridges``: a missing framework (or example plugin) fails there instead of skipping."""


@pytest.fixture
def example_plugin(fake_site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The example plugin distribution ``sara-plugin-example``, as a real installed distribution.

    tox env ``bridges`` pip-installs it; elsewhere its metadata and sources are laid out as pip would. Yields which.
    """
    from importlib import metadata

    try:
        metadata.distribution("sara-plugin-example")
        how = "installed"
    except metadata.PackageNotFoundError:
        if REQUIRE_BRIDGES:
            pytest.fail("tox env bridges installs examples/sara-plugin-example; it is missing")
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        from pathlib import Path

        example = Path(__file__).resolve().parent.parent / "examples" / "sara-plugin-example"
        project = tomllib.loads((example / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        fake_site.add_distribution(project["name"], project["version"], project["entry-points"]["sara.callbacks"])
        monkeypatch.syspath_prepend(str(example / "src"))
        how = "laid out"
    discovery.clear_cache()
    yield how
    discovery.clear_cache()


# ==================================================================================================================
# Shared helpers (tests/_helpers.py): importable as ``_helpers``, which --import-mode=importlib alone does not allow
# ==================================================================================================================

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


# ==================================================================================================================
# Config bounds (test_config.py, test_cli.py): the YAML alias bomb of issue 25, under any key
# ==================================================================================================================


def _alias_bomb(key: str, levels: int = 9) -> str:
    """A YAML config whose ``key`` holds ``10**levels`` values in a few hundred bytes: each level aliases the last.

    ``key`` is a top-level key, or ``"callbacks"`` for the params of its one item.
    """
    bomb = ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
    bomb += [f"&a{level} [{', '.join([f'*a{level - 1}'] * 10)}]" for level in range(1, levels)]
    listed = "[" + ", ".join(bomb) + "]"
    if key == "callbacks":
        return f"callbacks: [{{name: history, params: {{size: {listed}}}}}]\n"
    return f"callbacks: [history]\n{key}: {listed}\n"


@pytest.fixture
def alias_bomb() -> Callable[..., str]:
    """:func:`_alias_bomb`: ``alias_bomb(key, levels=9)`` is the text of the config."""
    return _alias_bomb


# ==================================================================================================================
# Faults of the file system (tests/test_files.py, test_full_disk.py, test_one_writer.py): real ones, never mocks
# ==================================================================================================================


def mount_tmpfs(folder: Path, *options: str) -> None:
    """Mount a tmpfs on ``folder`` (created), with ``options`` (``size=64k``, ``ro``), or skip saying why.

    Only root may mount (CI runs as root); elsewhere the test is skipped with that reason, never faked.
    """
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("a real full (or read-only) file system needs a tmpfs mount, which needs root (CI runs as root)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): no real full disk")


def unmount(folder: Path) -> None:
    import subprocess

    subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def _mounted(folder: Path, *options: str) -> Iterator[Path]:
    """A tmpfs mounted on ``folder`` with ``options`` while the fixture lasts (see :func:`mount_tmpfs`)."""
    mount_tmpfs(folder, *options)
    try:
        yield folder
    finally:
        unmount(folder)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KB file system (tmpfs), unmounted afterwards: what fills up fills it for real (ENOSPC)."""
    yield from _mounted(tmp_path / "disk", "size=64k", "mode=0755")


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A real read-only file system (a tmpfs mounted ``ro``): root could write into a folder without write bits."""
    yield from _mounted(tmp_path / "read-only", "ro", "size=64k")
