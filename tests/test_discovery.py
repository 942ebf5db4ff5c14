"""Discovery: plugins are found by name in the ``sara.callbacks`` group, from metadata, and imported only when used."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest
from altametris.sara.core import discovery
from altametris.sara.core.base_callback import BaseCallback
from altametris.sara.core.discovery import _scan
from altametris.sara.core.exceptions import (
    DuplicatePluginError,
    PluginError,
    PluginLoadError,
    PluginParameterError,
    PluginTypeError,
    SaraError,
    UnknownPluginError,
)

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import FakeSite

MODULE_PREFIX = "sara_test_"


def _names(infos: tuple[discovery.PluginInfo, ...]) -> list[str]:
    return [info.name for info in infos]


# -- listing: metadata only ------------------------------------------------------------------------------------------


def test_each_plugin_is_listed_with_its_distribution_version_and_target(plugin_site: FakeSite) -> None:
    infos = {info.name: info for info in discovery.available_plugins()}
    assert infos["recorder"] == discovery.PluginInfo("recorder", "sara_test_good:Recorder", "sara-test-good", "1.0")
    assert infos["recorder"].requirement == "sara-test-good==1.0"
    assert infos["broken"].distribution == "sara-test-broken"


def test_the_listing_is_sorted_by_name_and_includes_the_built_in_plugins(plugin_site: FakeSite) -> None:
    names = _names(discovery.available_plugins())
    assert names == sorted(names)
    assert {"history", "csv_logger", "early_stopping"} <= set(names)


def test_listing_imports_no_plugin_module(plugin_site: FakeSite) -> None:
    discovery.available_plugins()
    assert not [name for name in sys.modules if name.startswith(MODULE_PREFIX)]


def test_importing_the_library_and_listing_imports_no_plugin_in_a_fresh_process(plugin_site: FakeSite) -> None:
    script = textwrap.dedent(
        """
        import json, sys
        import altametris.sara.core
        from altametris.sara.core import discovery
        infos = discovery.available_plugins()
        targets = {info.target.partition(":")[0] for info in infos}
        imported = sorted(name for name in sys.modules if name in targets or name == "altametris.sara.plugins")
        print(json.dumps({"count": len(infos), "imported": imported}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=plugin_site.env(), check=True
    )
    report = json.loads(result.stdout)
    assert report["imported"] == []
    assert report["count"] >= 12


def test_a_broken_plugin_is_listed_like_the_others(plugin_site: FakeSite) -> None:
    assert "broken" in _names(discovery.available_plugins())


def test_both_plugins_of_a_clashing_name_are_listed(plugin_site: FakeSite) -> None:
    twins = [info for info in discovery.available_plugins() if info.name == "twin"]
    assert [info.requirement for info in twins] == ["sara-test-twin-a==1.0", "sara-test-twin-b==2.0"]


def test_the_group_is_read_once_per_process_until_the_cache_is_cleared(fake_site: FakeSite) -> None:
    fake_site.add_distribution("sara-test-first", "1.0", {"first": "sara_test_first:First"})
    assert "first" in _names(discovery.available_plugins())
    info = fake_site.root / "sara_test_second-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sara-test-second\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[sara.callbacks]\nsecond = sara_test_second:Second\n")
    assert "second" not in _names(discovery.available_plugins())
    discovery.clear_cache()
    assert "second" in _names(discovery.available_plugins())


def test_the_same_distribution_twice_on_sys_path_is_no_clash(
    fake_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = {"solo": "sara_test_solo:Solo"}
    modules = {"sara_test_solo": "from altametris.sara.core.base_callback import BaseCallback as Solo\n"}
    other = tmp_path / "other-site"
    fake_site.add_distribution("sara-test-solo", "1.0", plugins, modules)
    fake_site.add_distribution("sara-test-solo", "1.0", plugins, modules, root=other)
    monkeypatch.syspath_prepend(str(other))
    discovery.clear_cache()
    assert _names(discovery.available_plugins()).count("solo") == 1
    assert discovery.find_plugin("solo").requirement == "sara-test-solo==1.0"


def test_a_malformed_entry_points_line_harms_no_other_plugin(fake_site: FakeSite) -> None:
    info = fake_site.add_distribution("sara-test-odd", "1.0", {"fine": "sara_test_odd:Fine"})
    (info / "entry_points.txt").write_text("[sara.callbacks]\nno equals sign here\nfine = sara_test_odd:Fine\n")
    discovery.clear_cache()
    assert "fine" in _names(discovery.available_plugins())


def test_the_fast_reader_agrees_with_importlib_metadata(plugin_site: FakeSite) -> None:
    fast = _scan.scan_directories(discovery.GROUP)
    assert fast is not None
    assert sorted(fast) == sorted(_scan.scan_metadata(discovery.GROUP))


def test_a_zip_file_on_sys_path_falls_back_to_importlib_metadata(
    fake_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("sara_test_zipped-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: sara-test-zipped\n")
        zipped.writestr("sara_test_zipped-1.0.dist-info/entry_points.txt", "[sara.callbacks]\nzipped = m:Z\n")
    monkeypatch.syspath_prepend(str(archive))
    discovery.clear_cache()
    assert _scan.scan_directories(discovery.GROUP) is None
    assert discovery.find_plugin("zipped").distribution == "sara-test-zipped"


# -- finding one name ------------------------------------------------------------------------------------------------


def test_an_unknown_name_suggests_the_closest_and_says_where_plugins_come_from(plugin_site: FakeSite) -> None:
    with pytest.raises(UnknownPluginError) as caught:
        discovery.find_plugin("recordr")
    error = caught.value
    assert error.plugin == "recordr"
    assert error.suggestions[0] == "recorder"
    assert "recorder" in error.available
    message = str(error)
    assert "unknown plugin 'recordr'" in message
    assert "did you mean 'recorder'?" in message
    assert "'sara.callbacks'" in message
    assert sys.executable in message
    assert "sara-callbacks list" in message


def test_a_clashing_name_is_refused_naming_both_distributions(plugin_site: FakeSite) -> None:
    with pytest.raises(DuplicatePluginError) as caught:
        discovery.find_plugin("twin")
    error = caught.value
    assert error.plugin == "twin"
    assert error.distributions == ("sara-test-twin-a==1.0", "sara-test-twin-b==2.0")
    assert error.targets == ("sara_test_twin_a:Twin", "sara_test_twin_b:Twin")
    assert "'sara-test-twin-a==1.0'" in str(error)
    assert "'sara-test-twin-b==2.0'" in str(error)
    assert "uninstall" in str(error)


def test_a_clash_harms_no_other_plugin(plugin_site: FakeSite) -> None:
    assert isinstance(discovery.create_callback("recorder"), BaseCallback)


def test_a_name_with_control_characters_is_shown_safely(plugin_site: FakeSite) -> None:
    with pytest.raises(UnknownPluginError) as caught:
        discovery.find_plugin("evil\x1b[31m" + "x" * 500)
    message = str(caught.value)
    assert "\x1b" not in message
    assert "\\x1b" in message
    assert len(message) < 2000


def test_errors_are_sara_errors_and_never_key_or_attribute_errors(plugin_site: FakeSite) -> None:
    with pytest.raises(SaraError) as caught:
        discovery.find_plugin("nothing_like_it")
    assert not isinstance(caught.value, (KeyError, AttributeError, IndexError))


# -- loading: only what is used --------------------------------------------------------------------------------------


def test_loading_a_plugin_imports_its_module_only(plugin_site: FakeSite) -> None:
    factory = discovery.load_plugin("recorder")
    assert isinstance(factory, type)
    assert issubclass(factory, BaseCallback)
    assert sorted(name for name in sys.modules if name.startswith(MODULE_PREFIX)) == ["sara_test_good"]


def test_a_plugin_that_fails_to_import_names_itself_its_distribution_and_the_cause(plugin_site: FakeSite) -> None:
    with pytest.raises(PluginLoadError) as caught:
        discovery.load_plugin("broken")
    error = caught.value
    assert (error.plugin, error.distribution, error.target) == (
        "broken",
        "sara-test-broken==0.1",
        "sara_test_broken:Broken",
    )
    assert isinstance(error.__cause__, ModuleNotFoundError)
    message = str(error)
    for part in ("'broken'", "sara-test-broken==0.1", "'sara_test_broken:Broken'", "numpy_that_is_not_installed"):
        assert part in message
    assert "pip install" not in message  # a missing dependency: reinstalling the plugin would not help


def test_a_missing_attribute_is_a_load_error_too(fake_site: FakeSite) -> None:
    fake_site.add_distribution(
        "sara-test-typo", "1.0", {"typo": "sara_test_typo:Missing"}, {"sara_test_typo": "x = 1\n"}
    )
    with pytest.raises(PluginLoadError, match=r"'typo'.*has no attribute 'Missing'") as caught:
        discovery.load_plugin("typo")
    assert isinstance(caught.value.__cause__, AttributeError)


def _package_site(fake_site: FakeSite, target: str) -> None:
    """``sara-test-pkg 1.0``: the package ``sara_test_pkg`` (modules ``alerts`` and ``helpers``), plugin ``alert``."""
    package = fake_site.root / "sara_test_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "helpers.py").write_text("LIMIT = 1\n", encoding="utf-8")
    (package / "alerts.py").write_text(
        "from altametris.sara.core.base_callback import BaseCallback\n"
        "import sara_test_pkg.helpres  # a typo in the plugin's own code\n\n"
        "class Alert(BaseCallback):\n    pass\n",
        encoding="utf-8",
    )
    fake_site.add_distribution("sara-test-pkg", "1.0", {"alert": target})


def test_a_typo_in_the_entry_points_module_is_the_plugin_authors_mistake(fake_site: FakeSite) -> None:
    _package_site(fake_site, "sara_test_pkg.alrets:Alert")
    with pytest.raises(PluginLoadError) as caught:
        discovery.load_plugin("alert")
    message = str(caught.value)
    assert "No module named 'sara_test_pkg.alrets'" in message
    assert "its entry point names the module 'sara_test_pkg.alrets', which its own package does not have" in message
    assert "did you mean 'alerts'?" in message
    assert "this is a mistake of sara-test-pkg (for its authors: fix the entry point" in message
    assert "not installed" not in message
    assert "--force-reinstall" not in message
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_a_missing_module_of_the_plugins_own_code_is_its_authors_mistake_too(fake_site: FakeSite) -> None:
    _package_site(fake_site, "sara_test_pkg.alerts:Alert")
    with pytest.raises(PluginLoadError) as caught:
        discovery.load_plugin("alert")
    message = str(caught.value)
    assert "its code names the module 'sara_test_pkg.helpres', which its own package does not have" in message
    assert "did you mean 'helpers'?" in message


def test_a_missing_dependency_is_named_as_one_to_install(plugin_site: FakeSite) -> None:
    with pytest.raises(PluginLoadError) as caught:
        discovery.load_plugin("broken")
    message = str(caught.value)
    assert "it needs the module 'numpy_that_is_not_installed', which is not installed" in message
    assert "a dependency sara-test-broken does not declare, or one of its extras" in message
    assert "entry point" not in message


def test_a_distribution_installed_without_its_package_is_to_reinstall(fake_site: FakeSite) -> None:
    fake_site.add_distribution("sara-test-hollow", "1.0", {"hollow": "sara_test_hollow.core:Hollow"})
    with pytest.raises(PluginLoadError) as caught:
        discovery.load_plugin("hollow")
    message = str(caught.value)
    assert "sara-test-hollow is installed without its package 'sara_test_hollow'" in message
    assert "pip install --force-reinstall sara-test-hollow" in message


def test_a_module_that_calls_sys_exit_on_import_is_a_load_error(fake_site: FakeSite) -> None:
    fake_site.add_distribution(
        "sara-test-exit", "1.0", {"quits": "sara_test_exit:Quits"}, {"sara_test_exit": "import sys\nsys.exit(4)\n"}
    )
    with pytest.raises(PluginLoadError, match=r"failed to import: SystemExit: 4; importing it must not end"):
        discovery.load_plugin("quits")


@pytest.mark.parametrize(
    ("name", "found", "hint"),
    [
        ("not_a_class", "class sara_test_notcb.NotACallback, which does not derive from BaseCallback", "derive it"),
        ("not_callable", "int 42", "point the entry point at the callback class"),
        ("an_instance", "an instance of Real", "register the class, not an instance"),
    ],
)
def test_what_is_not_a_callback_is_refused_with_what_was_found(
    plugin_site: FakeSite, name: str, found: str, hint: str
) -> None:
    with pytest.raises(PluginTypeError) as caught:
        discovery.load_plugin(name)
    error = caught.value
    assert (error.plugin, error.distribution) == (name, "sara-test-notcb==0.2")
    message = str(error)
    assert "expected a BaseCallback subclass or a callable returning a BaseCallback instance" in message
    assert found in message
    assert hint in message


def test_a_factory_is_a_plugin(plugin_site: FakeSite) -> None:
    callback = discovery.create_callback("recorder_factory", {"label": "from factory"})
    assert type(callback).__name__ == "Recorder"
    assert callback.label == "from factory"  # type: ignore[attr-defined]


def test_a_factory_that_returns_no_callback_is_refused(plugin_site: FakeSite) -> None:
    with pytest.raises(
        PluginTypeError, match="its factory returned int 42, expected a BaseCallback instance"
    ) as caught:
        discovery.create_callback("wrong_factory")
    assert caught.value.found == 42
    assert caught.value.distribution == "sara-test-bad==0.3"


def test_a_malformed_target_is_a_load_error(fake_site: FakeSite) -> None:
    fake_site.add_distribution("sara-test-malformed", "1.0", {"malformed": "not a target!"})
    with pytest.raises(PluginLoadError, match="not a 'module:attribute' target"):
        discovery.load_plugin("malformed")


# -- building --------------------------------------------------------------------------------------------------------


def test_create_callback_passes_the_parameters(plugin_site: FakeSite) -> None:
    callback = discovery.create_callback("recorder", {"label": "x", "every": 3})
    assert (callback.label, callback.every) == ("x", 3)  # type: ignore[attr-defined]


def test_a_constructor_that_raises_is_wrapped_with_the_cause(plugin_site: FakeSite) -> None:
    with pytest.raises(PluginParameterError) as caught:
        discovery.create_callback("bad_init", {"window": -1})
    error = caught.value
    assert (error.plugin, error.distribution, error.target) == (
        "bad_init",
        "sara-test-bad==0.3",
        "sara_test_bad:BadInit",
    )
    assert isinstance(error.__cause__, ValueError)
    assert "its constructor raised ValueError: window must be positive, got -1" in str(error)
    assert "{'window': -1}" in str(error)


def test_a_sara_error_from_a_constructor_passes_through_naming_the_plugin_and_its_distribution(
    plugin_site: FakeSite,
) -> None:
    with pytest.raises(PluginParameterError) as caught:
        discovery.create_callback("raises_sara")
    error = caught.value
    assert str(error) == "plugin 'raises_sara' (sara-test-bad==0.3): nothing works"
    assert (error.plugin, error.distribution, error.parameter) == ("raises_sara", "sara-test-bad==0.3", "level")
    assert error.__cause__ is None


def test_plugin_errors_share_one_base(plugin_site: FakeSite) -> None:
    for name in ("broken", "not_callable", "twin", "nope"):
        with pytest.raises(PluginError):
            discovery.load_plugin(name)
