"""Train/test prompt overlap: exact and normalised, ids on both sides."""
from gemkit.data.overlap import normalise, prompt_overlap
from gemkit.data.records import PreferencePair


def test_normalise_folds_case_punctuation_whitespace_but_keeps_symbols():
    assert normalise("  Name a  COLOUR!\n") == "name a colour"
    assert normalise("“Quoted”, isn’t it?") == "quoted isn t it"
    assert normalise("Ｗｉｄｅ") == "wide"  # NFKC folds full-width letters
    assert normalise("2+2") != normalise("2-2")


def test_exact_and_normalised_overlap_with_ids():
    train = [PreferencePair("What is 2+2?", "4", "5", id="t1"), PreferencePair("Name a colour", "red", "7", id="t2"),
             PreferencePair("What is 2+2?", "4", "3", id="t3")]
    test = [PreferencePair("What is 2+2?", "4", "3", id="e1"), ("e2", "name a  colour!"), ("e3", "Unrelated")]
    report = prompt_overlap(train, test)
    assert report.exact == [("t1", "e1"), ("t3", "e1")] and report.normalised == [("t2", "e2")]
    assert report.test_ids() == ["e1", "e2"] and report.train_ids("exact") == ["t1", "t3"]
    summary = report.to_dict()
    assert (summary["train_size"], summary["test_size"], summary["clean"]) == (3, 3, False)
    assert summary["exact"]["test_prompts"] == 1 and summary["normalised"]["train_ids"] == ["t2"]


def test_chat_prompts_compare_by_their_text():
    chat = PreferencePair([{"role": "user", "content": "Hello there"}], "a", "b", id="c")
    assert prompt_overlap([chat], [("x", "hello there.")]).normalised == [("c", "x")]
    assert prompt_overlap([chat], [("y", "bye")]).clean
