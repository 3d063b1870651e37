"""A bench whose training data cannot fit the context stops before it writes anything (issue 8),
naming file, line and field, as ``gemkit train`` does; prompts that only need cutting are fine."""
import json

import pytest

from gemkit.cli import main
from gemkit.data.readers import load_pairs
from gemkit.errors import DataError
from gemkit.runner.bench import BenchConfig, check_training_lengths, run_bench


def _write_pairs(path, long_field):
    """Line 1 fits; line 2's ``long_field`` is 300 words, far over max_length=64 on its own."""
    rows = [{"prompt": "What is 2 + 3?", "chosen": "5", "rejected": "6"},
            {"prompt": "What is 4 + 4?", "chosen": "8", "rejected": "9"}]
    rows[1][long_field] = " ".join(["step"] * 300)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize("methods,long_field,refused", [
    (["dpo"], "rejected", True),   # dpo trains on both responses
    (["sft"], "rejected", False),  # sft trains on chosen only: an over-long rejected is never encoded
    (["sft"], "chosen", True),
])
def test_over_long_response_is_refused_before_the_run_directory_exists(tmp_path, methods, long_field, refused):
    data = _write_pairs(tmp_path / "pairs.jsonl", long_field)
    out = tmp_path / "run"
    config = BenchConfig(methods=methods, model="random:tiny", train=str(data), shots=[2], max_length=64, steps=1,
                         out=str(out), device="cpu", include_base=False, benchmarks=["arithmetic-pref"], limit=2)
    if not refused:  # the pre-check passes; the run itself is the other tests' business
        check_training_lengths(config, load_pairs(str(data)), set(methods))
        return
    with pytest.raises(DataError) as info:
        run_bench(config, progress=False)
    message = str(info.value)
    assert "pairs.jsonl" in message and "line 2" in message and long_field in message and "max_length=64" in message
    assert not out.exists()


def test_cli_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    data = _write_pairs(tmp_path / "pairs.jsonl", "chosen")
    config = tmp_path / "bench.yaml"
    config.write_text(f"model: random:tiny\ntrain: {data}\nshots: [2]\nmax_length: 64\nsteps: 1\ndevice: cpu\n"
                      f"include_base: false\nbenchmarks: [arithmetic-pref]\nout: {tmp_path / 'run'}\n")
    assert main(["bench", "--methods", "dpo", "-c", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error:") and "line 2" in err[0]
    assert not (tmp_path / "run").exists()
