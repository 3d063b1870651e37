"""Every dataset-backed adapter: the Hub path asks ``datasets.load_dataset`` for the upstream id, config and
split (no network: the loader is patched and serves the fixture rows), and the schema check runs up front,
before any model, naming the missing field and the line."""
import json

import pytest

from gemkit.errors import ConfigError, DataError
from gemkit.registry import registry

B = "benchmarks/"

# benchmark -> the upstream (path, config name, split) it must load by default, written out by hand
HUB = {
    "gsm8k": [("openai/gsm8k", "main", "test")],
    "math": [("HuggingFaceH4/MATH-500", None, "test")],
    "truthfulqa": [("truthfulqa/truthful_qa", "multiple_choice", "validation"),
                   ("truthfulqa/truthful_qa", "generation", "validation")],
    "rewardbench": [("allenai/reward-bench", None, "filtered")],
    "rewardbench2": [("allenai/reward-bench-2", None, "test")],
    "ultrafeedback": [("HuggingFaceH4/ultrafeedback_binarized", None, "test_prefs")],
    "pku-saferlhf": [("PKU-Alignment/PKU-SafeRLHF", "default", "test")],
    "hh-rlhf": [("Anthropic/hh-rlhf", None, "test")],
    "mt-bench": [("HuggingFaceH4/mt_bench_prompts", None, "train")],
}
# what the patched loader serves for each (path, config name, split)
SERVED = {
    ("openai/gsm8k", "main", "test"): "gsm8k.jsonl",
    ("openai/gsm8k", "main", "train"): "gsm8k_train.jsonl",
    ("HuggingFaceH4/MATH-500", None, "test"): "math.jsonl",
    ("DigitalLearningGmbH/MATH-lighteval", "default", "train"): "math_train.jsonl",
    ("truthfulqa/truthful_qa", "multiple_choice", "validation"): "truthfulqa_mc.jsonl",
    ("truthfulqa/truthful_qa", "generation", "validation"): "truthfulqa_gen.jsonl",
    ("allenai/reward-bench", None, "filtered"): "rewardbench.jsonl",
    ("allenai/reward-bench-2", None, "test"): "rewardbench2.jsonl",
    ("HuggingFaceH4/ultrafeedback_binarized", None, "test_prefs"): "ultrafeedback.jsonl",
    ("PKU-Alignment/PKU-SafeRLHF", "default", "test"): "pku_saferlhf.jsonl",
    ("Anthropic/hh-rlhf", None, "test"): "hh_rlhf.jsonl",
    ("HuggingFaceH4/mt_bench_prompts", None, "train"): "mt_bench.jsonl",
}


def rows(assets, name):
    return [json.loads(line) for line in (assets / B / name).read_text().splitlines()]


@pytest.fixture
def hub(monkeypatch, assets):
    """A stand-in for ``datasets.load_dataset`` that records each call and serves the fixture rows."""
    import datasets

    calls = []

    def load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        if (path, name, split) not in SERVED:
            raise FileNotFoundError(f"no such dataset {path} {name} {split}")
        return rows(assets, SERVED[(path, name, split)])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def build(name, **options):
    return registry("benchmark").get(name).build(options)


@pytest.mark.parametrize("name", sorted(HUB))
def test_hub_path_loads_the_upstream_id_config_and_split(hub, name):
    items = build(name).load()
    assert hub == HUB[name]
    assert sum(len(v) for v in items.values()) if isinstance(items, dict) else len(items)


@pytest.mark.parametrize(("name", "fewshot"), [("gsm8k", ("openai/gsm8k", "main", "train")),
                                               ("math", ("DigitalLearningGmbH/MATH-lighteval", "default", "train"))])
def test_hub_path_of_the_few_shot_pool(hub, name, fewshot):
    """Few-shot examples come from the training split: one more load, after the evaluated split's;
    fewshot_split names another one."""
    items = build(name, num_fewshot=1, limit=2).load()
    assert hub == [*HUB[name], fewshot] and [len(i["shots"]) for i in items] == [1, 1]
    hub.clear()
    with pytest.raises(DataError, match="could not load split 'validation'.*--data PATH"):
        build(name, num_fewshot=1, limit=2, fewshot_split="validation").load()
    assert hub == [*HUB[name], (*fewshot[:2], "validation")]


def test_split_override_and_an_unreachable_hub(hub):
    """--split picks another upstream split; a failed load says how to run without the Hub."""
    build("gsm8k", split="train").load()
    assert hub == [("openai/gsm8k", "main", "train")]
    with pytest.raises(DataError, match=r"openai/gsm8k: could not load split 'dev' .*pass --data PATH"):
        build("gsm8k", split="dev").load()


# benchmark -> (fixture, the option that points at it, every field its rows must carry, other options)
SCHEMA = {
    "gsm8k": ("gsm8k.jsonl", "data", ["question", "answer"], {}),
    "gsm8k-fewshot": ("gsm8k_train.jsonl", "fewshot_data", ["question", "answer"],
                      {"num_fewshot": 1, "data": "gsm8k.jsonl"}),
    "math": ("math.jsonl", "data", ["problem", "solution"], {}),
    "math-fewshot": ("math_train.jsonl", "fewshot_data", ["problem", "solution"],
                     {"num_fewshot": 1, "data": "math.jsonl"}),
    "truthfulqa-mc": ("truthfulqa_mc.jsonl", "data", ["question", "mc1_targets", "mc2_targets"], {"parts": ["mc"]}),
    "truthfulqa-gen": ("truthfulqa_gen.jsonl", "generation_data",
                       ["question", "best_answer", "correct_answers", "incorrect_answers"], {"parts": ["gen"]}),
    "rewardbench": ("rewardbench.jsonl", "data", ["prompt", "chosen", "rejected", "subset", "id"], {}),
    "rewardbench2": ("rewardbench2.jsonl", "data", ["id", "prompt", "chosen", "rejected", "subset"], {}),
    # prompt, prompt_id and the ratings are optional (copies without them load; see test_bench_adapters_preference)
    "ultrafeedback": ("ultrafeedback.jsonl", "data", ["chosen", "rejected"], {}),
    "pku-saferlhf": ("pku_saferlhf.jsonl", "data", ["prompt", "response_0", "response_1", "better_response_id",
                                                     "safer_response_id"], {}),
    "hh-rlhf": ("hh_rlhf.jsonl", "data", ["chosen", "rejected"], {}),
    "mt-bench": ("mt_bench.jsonl", "data", ["question_id", "category", "turns"], {}),
}


@pytest.mark.parametrize("case", sorted(SCHEMA))
def test_schema_check_names_the_missing_field_before_any_model(case, assets, tmp_path):
    """For every required field in turn: drop it from row 2 of the fixture -> 'line 2: field F: missing'
    from load() alone (no model exists in this test)."""
    fixture, option, fields, extra = SCHEMA[case]
    name = case.removesuffix("-fewshot").removesuffix("-mc").removesuffix("-gen")
    extra = {k: str(assets / B / v) if k == "data" else v for k, v in extra.items()}
    for field in fields:
        broken = rows(assets, fixture)
        del broken[1][field]
        path = tmp_path / f"{field}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in broken))
        with pytest.raises(DataError, match=rf"{path.name}, line 2: field '{field}': missing; the row has: "):
            build(name, **extra, **{option: str(path)}).load()


def test_pairs_is_local_only_and_names_a_missing_column(assets, tmp_path):
    with pytest.raises(ConfigError, match=r"needs a file: --data PATH"):
        build("pairs").load()
    bad = tmp_path / "pairs.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"}) + "\n"
                   + json.dumps({"prompt": "p", "chosen": "c"}) + "\n")
    with pytest.raises(DataError, match=r"line 2: field 'rejected'"):
        build("pairs", data=str(bad)).load()
