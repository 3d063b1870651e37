"""``gemkit report RUN_DIR``: writes the requested formats, prints the table, errors exit 2."""
from gemkit.cli import main
from gemkit.report.schema import write_cell


def _run(tmp_path):
    run = tmp_path / "run"
    for method, right in (("dpo", 12), ("sega", 18)):
        items = [{"id": i, "correct": int(i < right)} for i in range(20)]
        write_cell(run, {"cell_id": f"{method}-x", "method": method, "shots": 8, "seed": 0, "status": "ok",
                         "error": None, "train": None, "benchmarks": {"arithmetic": {
                             "status": "ok", "error": None, "metrics": {"accuracy": right / 20},
                             "primary": "accuracy", "higher_is_better": {"accuracy": True},
                             "items": "items/arithmetic.jsonl"}}}, items={"arithmetic": items})
    return run


def test_report_command_writes_formats_and_prints_table(tmp_path, capsys):
    run = _run(tmp_path)
    assert main(["report", str(run), "--out", str(tmp_path / "rep"), "--formats", "md,tex", "--baseline", "dpo"]) == 0
    printed = capsys.readouterr().out
    # 6 discordant items, all for sega: McNemar p = 2 · (1/2)⁶ = 0.031 < 0.05, one test so Holm keeps it
    assert "| GEM (SEGA) | **90.0†** |" in printed and "| DPO | <u>60.0</u> |" in printed
    assert sorted(p.name for p in (tmp_path / "rep").iterdir() if p.is_file()) == ["report.md", "table.tex"]
    assert main(["report", str(run)]) == 0
    assert (run / "report" / "report.html").is_file() and (run / "report" / "table.json").is_file()


def test_report_command_errors(tmp_path, capsys):
    run = _run(tmp_path)
    assert main(["report", str(run), "--formats", "md,docx"]) == 2
    assert "unknown format(s) docx; choose from md, tex, csv, json, html" in capsys.readouterr().err
    assert main(["report", str(run), "--baseline", "ipo", "--formats", "md"]) == 2
    assert "baseline 'ipo' is not a row" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no finished cells" in capsys.readouterr().err
