"""Real installs: pip builds and installs plugin distributions into a temporary ``--target``
(never into the project's environment), and gemkit finds them through their entry points.

- tests/plugins_broken is installed and listed with its errors while the rest works;
- ``gemkit plugins new scorer NAME`` writes a package that installs, is listed, passes
  gemkit's conformance checks and whose generated tests pass as generated.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gemkit.cli import main
from gemkit.cli.plugins_new import write_skeleton
from gemkit.errors import ConfigError
from gemkit.manager import set_plugin_manager
from gemkit.registry import registry
from gemkit.testing import check_mapping, check_scorer

BROKEN = Path(__file__).parent / "plugins_broken"


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    for var in ("GEMKIT_PLUGINS", "GEMKIT_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GEMKIT_STRICT_PLUGINS", "0")
    set_plugin_manager(None)
    yield
    set_plugin_manager(None)


def pip_install_target(source: Path, work: Path) -> Path:
    """``pip install --no-deps --no-build-isolation --target`` a copy of ``source`` (no network)."""
    copy = work / "src" / source.name
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(copy)], check=True, capture_output=True, text=True)
    return site


def test_pip_installed_broken_distribution_is_listed_with_errors(tmp_path, monkeypatch, capsys):
    site = pip_install_target(BROKEN, tmp_path)
    assert list(site.glob("gemkit_broken-0.0.1.dist-info/entry_points.txt"))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("GEMKIT_DISABLE_PLUGINS", "clash")  # the clash is tested on its own
    assert main(["plugins", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["broken_import"]["error"].startswith("ImportError: gemkit-broken needs libfoo")
    assert rows["broken_import"]["distribution"] == "gemkit-broken"
    assert rows["clash"]["blocked"] is True
    assert rows["good_len"]["distribution"] == "gemkit-broken" and rows["entropy"]["distribution"] == "gemkit"


def test_plugins_new_scorer_installs_lists_conforms_and_its_tests_pass(tmp_path, monkeypatch, capsys):
    target = tmp_path / "gemkit-conf-mean"
    assert main(["plugins", "new", "scorer", "conf_mean", "--dir", str(target)]) == 0
    assert "Wrote scorer plugin 'conf_mean'" in capsys.readouterr().out
    assert sorted(p.name for p in target.rglob("*") if p.is_file()) == [
        "README.md", "gemkit_conf_mean.py", "pyproject.toml", "test_conf_mean.py"]
    site = pip_install_target(target, tmp_path)
    monkeypatch.syspath_prepend(str(site))
    entry = registry("scorer").get("conf_mean")
    assert (entry.plugin, entry.distribution, entry.version) == ("conf_mean", "gemkit-conf-mean", "0.1.0")
    check_scorer(entry.build())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(target / "tests")],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout


def test_plugins_new_mapping_skeleton_conforms(tmp_path, monkeypatch):
    target = write_skeleton("mapping", "centred", tmp_path / "m")
    monkeypatch.syspath_prepend(str(target))
    import gemkit_centred

    check_mapping(gemkit_centred.CentredMapping(gemkit_centred.CentredConfig()), monotone=True)


def test_plugins_new_refuses_bad_names_and_existing_directories(tmp_path, capsys):
    with pytest.raises(ConfigError, match="plugin name must match"):
        write_skeleton("scorer", "My-Scorer", tmp_path / "x")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    assert main(["plugins", "new", "scorer", "ok_name", "--dir", str(tmp_path / "taken")]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
