"""Make a plugin distribution visible to ``importlib.metadata`` without installing it.

Writes ``<site>/<name>-<version>.dist-info/{METADATA,entry_points.txt}`` and puts ``site`` (and the
directory holding the plugin modules) on ``sys.path`` through pytest's ``monkeypatch``, so the
change is undone after the test — the same files pip would write, minus the copy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

HERE = Path(__file__).parent

#: every entry point of the gemkit-broken distribution (see pyproject.toml next to this file)
BROKEN_ENTRY_POINTS = {
    "broken_import": "gemkit_broken.import_error",
    "broken_hookname": "gemkit_broken.misspelled_hook",
    "broken_register": "gemkit_broken.register_raises",
    "clash": "gemkit_broken.clash",
    "flaky": "gemkit_broken.runtime_raises",
    "good": "gemkit_broken.good",
    "bad_loader": "gemkit_broken.bad_loader",
}


def fake_dist(site: Path, monkeypatch: Any, entry_points: dict[str, str], *, name: str = "gemkit-broken",
              version: str = "0.0.1", code_dir: Path = HERE) -> Path:
    """Expose ``entry_points`` (name -> module) in group ``gemkit`` as distribution ``name``."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{ep} = {module}\n" for ep, module in entry_points.items())
    (info / "entry_points.txt").write_text(f"[gemkit]\n{lines}")
    monkeypatch.syspath_prepend(str(code_dir))
    monkeypatch.syspath_prepend(str(site))
    return info
