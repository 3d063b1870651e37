"""Plugin loading: built-ins listed as gemkit, a broken distribution listed with its errors while
the rest works, name clashes naming both distributions, blocking (built-ins too), the allow-list
and ``--no-plugins``. The broken distribution is tests/plugins_broken (see its README)."""
import json
import sys

import pytest
from plugins_broken.fake_dist import BROKEN_ENTRY_POINTS, fake_dist

from gemkit.cli import main
from gemkit.errors import DuplicateComponentError, PluginError, UnknownComponentError
from gemkit.manager import BUILTIN_PLUGINS, build_plugin_manager, get_plugin_manager, set_plugin_manager
from gemkit.registry import collect, registry

LOADABLE = {k: v for k, v in BROKEN_ENTRY_POINTS.items() if k != "clash"}


@pytest.fixture(autouse=True)
def clean_plugin_env(monkeypatch):
    for var in ("GEMKIT_PLUGINS", "GEMKIT_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GEMKIT_STRICT_PLUGINS", "0")
    set_plugin_manager(None)
    yield
    set_plugin_manager(None)


def list_json(capsys, *flags):
    assert main([*flags, "plugins", "list", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_builtins_are_listed_with_distribution_gemkit(capsys):
    rows = list_json(capsys, "--no-plugins")
    assert rows and all(row["distribution"] == "gemkit" and row["error"] is None for row in rows)
    assert {row["plugin"] for row in rows} <= set(BUILTIN_PLUGINS)
    by_kind = {(row["kind"], row["name"]) for row in rows}
    assert {("scorer", "entropy"), ("objective", "sega"), ("objective", "dpo")} <= by_kind


def test_broken_distribution_is_listed_with_its_errors_while_the_rest_works(tmp_path, monkeypatch, capsys):
    fake_dist(tmp_path, monkeypatch, LOADABLE)
    rows = {row["name"]: row for row in list_json(capsys)}
    assert "ImportError: gemkit-broken needs libfoo" in rows["broken_import"]["error"]
    assert "register_scorer" in rows["broken_hookname"]["error"]
    assert "RuntimeError: config file ~/.broken.toml is missing" in rows["broken_register"]["error"]
    for name in ("broken_import", "broken_hookname", "broken_register"):
        assert rows[name]["distribution"] == "gemkit-broken" and rows[name]["version"] == "0.0.1"
    assert rows["good_len"]["kind"] == "scorer" and rows["good_len"]["plugin"] == "good"
    assert rows["good_len"]["distribution"] == "gemkit-broken" and rows["good_len"]["error"] is None
    assert rows["entropy"]["distribution"] == "gemkit" and rows["sega"]["error"] is None
    # The misspelled hook's plugin is not left half-registered.
    assert get_plugin_manager().get_plugin("broken_hookname") is None


def test_table_output_shows_failed_plugins(tmp_path, monkeypatch, capsys):
    fake_dist(tmp_path, monkeypatch, {"broken_import": BROKEN_ENTRY_POINTS["broken_import"]})
    assert main(["plugins", "list"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "broken_import" in line)
    assert line.startswith("(failed)") and "gemkit-broken 0.0.1" in line and "ERROR: ImportError" in line


def test_unknown_name_error_mentions_plugins_that_failed(tmp_path, monkeypatch):
    fake_dist(tmp_path, monkeypatch, LOADABLE)
    with pytest.raises(UnknownComponentError) as info:
        registry("scorer").get("entropi")
    message = str(info.value)
    assert "Did you mean: entropy?" in message
    assert "plugin 'broken_import' failed: ImportError" in message
    assert "plugin 'broken_register' failed: RuntimeError" in message


def test_strict_mode_turns_a_load_failure_into_an_error(tmp_path, monkeypatch):
    fake_dist(tmp_path, monkeypatch, {"broken_import": BROKEN_ENTRY_POINTS["broken_import"]})
    with pytest.raises(PluginError, match=r"plugin 'broken_import' \(gemkit-broken\): failed to load: ImportError"):
        build_plugin_manager(strict=True)
    monkeypatch.setenv("GEMKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError):
        build_plugin_manager()


def test_component_name_clash_names_both_plugins_and_distributions(tmp_path, monkeypatch, capsys):
    fake_dist(tmp_path, monkeypatch, {"clash": BROKEN_ENTRY_POINTS["clash"]})
    with pytest.raises(DuplicateComponentError) as info:
        collect(build_plugin_manager(), "scorer")
    assert str(info.value).startswith(
        "scorer 'entropy' registered twice: by plugin 'entropy' (gemkit) and by plugin 'clash' (gemkit-broken)")
    assert main(["plugins", "list"]) == 2
    assert "Error: scorer 'entropy' registered twice" in capsys.readouterr().err
    # Blocking either side resolves it.
    assert "entropy" in collect(build_plugin_manager(blocked=["clash"]), "scorer")
    only_clash = collect(build_plugin_manager(blocked=["entropy"]), "scorer").get("entropy")
    assert only_clash.plugin == "clash" and only_clash.distribution == "gemkit-broken"


def test_entry_point_named_like_a_builtin_is_refused_not_shadowing(tmp_path, monkeypatch):
    fake_dist(tmp_path, monkeypatch, {"entropy": BROKEN_ENTRY_POINTS["good"]})
    pm = build_plugin_manager()
    record = pm.load_records["entropy (gemkit-broken)"]
    assert "already used by distribution 'gemkit'" in record.error
    assert collect(pm, "scorer").get("entropy").distribution == "gemkit"


def test_blocking_by_name_works_for_builtins(monkeypatch, capsys):
    monkeypatch.setenv("GEMKIT_DISABLE_PLUGINS", "entropy,dpo")
    rows = list_json(capsys, "--no-plugins")
    names = {(row["kind"], row["name"]) for row in rows}
    assert ("scorer", "entropy") not in names and ("objective", "dpo") not in names
    assert ("objective", "sega") in names
    blocked = {row["name"] for row in rows if row.get("blocked")}
    assert blocked == {"entropy", "dpo"}
    with pytest.raises(UnknownComponentError, match="Unknown scorer 'entropy'"):
        registry("scorer").get("entropy")


def test_allow_list_loads_only_named_plugins_and_never_imports_the_others(tmp_path, monkeypatch, capsys):
    for module in [m for m in sys.modules if m.startswith("gemkit_broken.")]:
        monkeypatch.delitem(sys.modules, module)
    fake_dist(tmp_path, monkeypatch, LOADABLE)
    monkeypatch.setenv("GEMKIT_PLUGINS", "good")
    rows = {row["name"]: row for row in list_json(capsys)}
    assert rows["good_len"]["plugin"] == "good"
    assert all(rows[name].get("blocked") for name in ("broken_import", "broken_register", "flaky"))
    assert not any(row["error"] for row in rows.values())
    assert "gemkit_broken.register_raises" not in sys.modules  # blocked plugins' code never ran
    assert "gemkit_broken.runtime_raises" not in sys.modules


def test_allow_list_accepts_distribution_names_and_empty_means_none(tmp_path, monkeypatch):
    fake_dist(tmp_path, monkeypatch, {"good": BROKEN_ENTRY_POINTS["good"]})
    monkeypatch.setenv("GEMKIT_PLUGINS", "gemkit-broken")
    assert "good_len" in collect(build_plugin_manager(), "scorer")
    monkeypatch.setenv("GEMKIT_PLUGINS", "")
    pm = build_plugin_manager()
    assert "good_len" not in collect(pm, "scorer") and "entropy" in collect(pm, "scorer")
    third_party = [r for r in pm.load_records.values() if r.distribution != "gemkit"]
    assert third_party and all(r.blocked for r in third_party)


def test_no_plugins_flag_loads_builtins_only(tmp_path, monkeypatch, capsys):
    fake_dist(tmp_path, monkeypatch, LOADABLE)
    monkeypatch.setenv("GEMKIT_PLUGINS", "good")  # the flag wins over the allow-list
    rows = list_json(capsys, "--no-plugins")
    assert {row["distribution"] for row in rows} == {"gemkit"}
    assert set(get_plugin_manager().load_records) == set(BUILTIN_PLUGINS)


def test_no_plugins_flag_only_counts_before_the_subcommand():
    from gemkit.cli import _global_options

    assert _global_options(["--no-plugins", "plugins", "list"]) == ["--no-plugins"]
    assert _global_options(["train", "--set", "--no-plugins"]) == []
