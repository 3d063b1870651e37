"""``result.json`` has one typed record (:class:`gemkit.results.CellResult`): what the runner writes
reads back equal, older files still load, and a wrong-typed field is refused naming file and field."""
import json

import pytest
from _tiny_bench import tiny_bench_config

from gemkit.errors import DataError
from gemkit.report.schema import load_run
from gemkit.results import Baseline, BenchmarkOutcome, CellResult, TrainInfo, load_cell
from gemkit.runner.bench import run_bench


def test_a_result_json_written_by_the_runner_reads_back_as_the_same_record(tmp_path, monkeypatch):
    """base + dpo on the tiny model, arithmetic forced to fail: every record the runner handed to
    ``on_cell_done`` equals what :func:`load_cell` reads from its ``result.json`` (ok and failed
    benchmark entries, train info, device, config); then a resume refuses a cell whose ``shots``
    was made a string, naming the file and the field.

    Checked it can fail: dropping ``"device"`` from :meth:`CellResult.to_json` reads back
    ``device=None`` and the equality fails."""
    import gemkit.evaluation as evaluation

    real = evaluation.evaluate

    def arithmetic_fails(name, *args, **kwargs):
        if name == "arithmetic":
            raise RuntimeError("forced failure")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate", arithmetic_fails)
    written: list[CellResult] = []
    out = run_bench(tiny_bench_config(tmp_path / "run", methods=["dpo"]), on_cell_done=written.append, progress=False)
    assert [r.method for r in written] == ["base", "dpo"]
    for record in written:
        path = out / "cells" / record.cell_id / "result.json"
        assert load_cell(path) == record
        assert load_cell(path).directory == path.parent
    dpo = written[1]
    assert dpo.train is not None and dpo.train.steps == 1 and dpo.device == "cpu"
    assert dpo.benchmarks["arithmetic"].status == "failed" and "forced failure" in dpo.benchmarks["arithmetic"].error
    assert dpo.benchmarks["arithmetic-pref"].ok and dpo.benchmarks["arithmetic-pref"].n == 3

    base_file = out / "cells" / written[0].cell_id / "result.json"
    data = json.loads(base_file.read_text())
    data["shots"] = "8"
    base_file.write_text(json.dumps(data))
    with pytest.raises(DataError, match=rf"{written[0].cell_id}/result.json: field 'shots': expected an integer, got str"):
        run_bench(tiny_bench_config(tmp_path / "run", methods=["dpo"]), resume=True, progress=False)


@pytest.mark.parametrize(("change", "where", "expected"), [
    ({"shots": "8"}, "shots", "an integer, got str"),
    ({"seed": True}, "seed", "an integer, got bool"),
    ({"wall_s": "12s"}, "wall_s", "a number, got str"),
    ({"train": {"steps": 1.5}}, "train.steps", "an integer, got float"),
    ({"benchmarks": {"gsm8k": {"status": "ok", "metrics": {"accuracy": "0.5"}, "primary": "accuracy"}}},
     "benchmarks.gsm8k.metrics.accuracy", "a number, got str"),
    ({"baselines": {"mt-bench": {"model": "sft", "cell_id": 3}}}, "baselines.mt-bench.cell_id", "a string, got int"),
])
def test_a_wrong_typed_field_is_refused_naming_the_file_and_the_field(tmp_path, change, where, expected):
    """Each value has the wrong JSON type for its field; the report's loader (the same ``load_cell``)
    refuses it with ``<file>: field '<dotted field>': expected …``.

    Checked it can fail: letting ``_typed`` return every value unchecked loads all six files."""
    cell = tmp_path / "run" / "cells" / "x"
    cell.mkdir(parents=True)
    record = {"cell_id": "x", "method": "dpo", "shots": 8, "seed": 0, "status": "ok", **change}
    (cell / "result.json").write_text(json.dumps(record))
    with pytest.raises(DataError, match=rf"x/result.json: field '{where}': expected {expected}"):
        load_run(tmp_path / "run")


def test_a_result_json_in_the_earlier_shape_still_loads(tmp_path):
    """Files written before the record was shared lack keys (an ok cell had no ``traceback``, a failed
    one no ``device`` or ``baselines``, a failed benchmark only status/error/traceback); they load with
    those keys at their defaults.

    Checked it can fail: requiring every key (``data[key]`` instead of ``data.get``) refuses both files."""
    ok = {"cell_id": "dpo-1", "method": "dpo", "shots": 8, "seed": 1, "status": "ok", "error": None,
          "train": {"wall_s": 4.5, "steps": 2, "log": "train_log.jsonl", "skipped_batches": 0, "peak_mem_mb": 10.0,
                    "tensorboard": "train/tb", "reward_model": None},
          "benchmarks": {"arithmetic-pref": {"benchmark": "arithmetic-pref", "status": "ok", "metrics": {"accuracy": 1},
                                             "primary": "accuracy", "higher_is_better": {"accuracy": True},
                                             "conventions": {"kind": "pref"}, "subsets": {}, "counts": {}, "n": 3,
                                             "error": None, "items": "items/arithmetic-pref.jsonl"},
                         "mt-bench": {"status": "failed", "error": "ValueError: no judge", "traceback": "tb"}},
          "baselines": {"mt-bench": {"model": "sft", "cell_id": "sft-1"}}, "config": {"steps": 2}, "device": "cpu",
          "wall_s": 9.0, "peak_mem_mb": 12.0}
    failed = {"cell_id": "ipo-1", "method": "ipo", "shots": 8, "seed": 1, "status": "failed", "error": "boom",
              "train": None, "benchmarks": {}, "config": {}, "traceback": "tb", "wall_s": 1.0, "peak_mem_mb": None}
    for record in (ok, failed):
        (tmp_path / record["cell_id"]).mkdir()
        (tmp_path / record["cell_id"] / "result.json").write_text(json.dumps(record))
    assert load_cell(tmp_path / "dpo-1" / "result.json") == CellResult(
        "dpo-1", "dpo", 8, 1, "ok", train=TrainInfo(4.5, 10.0, 2, "train_log.jsonl", 0, "train/tb"),
        benchmarks={"arithmetic-pref": BenchmarkOutcome("arithmetic-pref", "ok", metrics={"accuracy": 1},
                                                        primary="accuracy", higher_is_better={"accuracy": True},
                                                        items="items/arithmetic-pref.jsonl",
                                                        conventions={"kind": "pref"}, n=3),
                    "mt-bench": BenchmarkOutcome("mt-bench", "failed", "ValueError: no judge", traceback="tb")},
        baselines={"mt-bench": Baseline("sft", "sft-1")}, config={"steps": 2}, device="cpu", wall_s=9.0,
        peak_mem_mb=12.0)
    assert load_cell(tmp_path / "ipo-1" / "result.json") == CellResult(
        "ipo-1", "ipo", 8, 1, "failed", "boom", traceback="tb", wall_s=1.0)
