"""Every example config in benchmarks/ parses and validates (all names resolved) without loading a model."""
from pathlib import Path

import pytest
import yaml

from gemkit.config import config_from_dict
from gemkit.runner.bench import BenchConfig

CONFIGS = sorted((Path(__file__).parents[1] / "benchmarks").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_validates(path):
    text = path.read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert text.startswith("#") and any("gemkit bench -c" in line for line in header)
    config = config_from_dict(BenchConfig, yaml.safe_load(text), where=path.name)
    config.validate()
