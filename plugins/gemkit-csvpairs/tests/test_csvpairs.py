"""The csvpairs judge: overlap F1 by hand, verdicts, ties, errors with file and line."""
import pytest
from gemkit_csvpairs import CsvPairsConfig, CsvPairsJudge, overlap_f1, register_judges

from gemkit.errors import ConfigError, DataError, GemkitError

CSV = """prompt,chosen,rejected,subset
What is 2 + 3?,2 + 3 = 5. Final Answer: 5,2 + 3 = 6. Final Answer: 6,math
"Name a primary colour.","Red is a primary colour.","Green is a primary colour.",chat
"""


@pytest.fixture
def judge(tmp_path):
    path = tmp_path / "refs.csv"
    path.write_text(CSV)
    return CsvPairsJudge(CsvPairsConfig(path=str(path)))


def test_overlap_f1_by_hand():
    """"the cat sat" vs "the cat ran away": common = {the, cat} = 2; P = 2/3, R = 2/4;
    F1 = 2·(2/3)·(1/2) / (2/3 + 1/2) = (2/3) / (7/6) = 4/7."""
    assert overlap_f1("the cat sat", "the cat ran away") == pytest.approx(4 / 7)
    assert overlap_f1("", "") == 1.0 and overlap_f1("a", "b") == 0.0
    assert overlap_f1("Final Answer: 5.", "final answer 5") == 1.0  # case and punctuation ignored


def test_verdicts(judge):
    q = "What is 2 + 3?"
    assert judge.compare(q, "2 + 3 = 5. Final Answer: 5", "2 + 3 = 6. Final Answer: 6") == "A"
    assert judge.compare(q, "Final Answer: 6", "Final Answer: 5") == "B"
    assert judge.compare(q, "no idea", "no idea") == "tie"
    assert judge.compare("  name a PRIMARY colour ", "Red is a primary colour.", "Green.") == "A"


def test_margin_turns_small_differences_into_ties(tmp_path, judge):
    q = "What is 2 + 3?"
    assert judge.compare(q, "Final Answer: 5", "Final Answer: 6") == "A"
    wide = CsvPairsJudge(CsvPairsConfig(path=judge.config.path, margin=1.0))
    assert wide.compare(q, "Final Answer: 5", "Final Answer: 6") == "tie"


def test_missing_question_errors_or_ties(judge):
    with pytest.raises(GemkitError, match="question not in refs.csv"):
        judge.compare("Unknown?", "a", "b")
    tie = CsvPairsJudge(CsvPairsConfig(path=judge.config.path, on_missing="tie"))
    assert tie.compare("Unknown?", "a", "b") == "tie"


def test_bad_files_name_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,chosen\nq,a\n")
    with pytest.raises(DataError, match=r"bad.csv, line 2: field 'rejected': missing"):
        CsvPairsJudge(CsvPairsConfig(path=str(bad))).compare("q", "a", "b")
    dup = tmp_path / "dup.csv"
    dup.write_text("prompt,chosen,rejected\nq,a,b\nQ!,c,d\n")
    with pytest.raises(DataError, match=r"dup.csv, line 3: field 'prompt': the same question appears twice"):
        CsvPairsJudge(CsvPairsConfig(path=str(dup))).compare("q", "a", "b")
    with pytest.raises(GemkitError, match="needs a file"):
        CsvPairsJudge().compare("q", "a", "b")
    with pytest.raises(ConfigError, match="on_missing must be"):
        CsvPairsConfig(on_missing="guess")


def test_registers_as_a_judge_through_gemkit():
    from gemkit.manager import build_plugin_manager
    from gemkit.registry import registry

    seen = []
    register_judges(lambda cls, **kw: seen.append((cls.name, kw)))
    assert seen == [("csvpairs", {"aliases": ("csv-pairs",)})]
    entry = registry("judge", build_plugin_manager(allow=["csvpairs"])).get("csvpairs")
    assert (entry.distribution, entry.version) == ("gemkit-csvpairs", "0.1.0")
