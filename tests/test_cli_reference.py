"""The README's CLI reference is generated from the argparse parsers and must match them."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))

import gen_cli_reference  # noqa: E402


def test_readme_cli_reference_matches_the_parsers():
    readme = (ROOT / "README.md").read_text()
    assert readme.startswith("# gemkit\n\n```bash\nmake bench")
    wanted = gen_cli_reference.splice(readme, gen_cli_reference.render())
    assert readme == wanted, "README.md CLI reference is stale: run `python docs/gen_cli_reference.py`"


def test_every_command_and_flag_appears():
    import argparse

    from gemkit.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    parsers = [build_parser()]
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += list(action.choices.values())
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in readme or f", {option}" in readme, f"{parser.prog}: {option} undocumented"
    assert "### `gemkit plugins new`" in readme and "### `gemkit train`" in readme


def test_check_mode_detects_drift(tmp_path, monkeypatch):
    stale = tmp_path / "README.md"
    stale.write_text(f"x\n{gen_cli_reference.START}\nold\n{gen_cli_reference.END}\n")
    monkeypatch.setattr(gen_cli_reference, "README", stale)
    assert gen_cli_reference.main(["--check"]) == 1
    assert gen_cli_reference.main([]) == 0 and gen_cli_reference.main(["--check"]) == 0


def test_script_runs_standalone():
    run = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_cli_reference.py"), "--stdout"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and "### `gemkit models info`" in run.stdout
