"""Two CPU processes (gloo) with per-rank batch 2 train exactly like one process with batch 4."""
import os
import socket

import torch
import torch.multiprocessing as mp

from gemkit.io import read_jsonl
from gemkit.models import LoraSpec, ModelSpec, load_model
from gemkit.train import TrainConfig, train

from test_engine import PAIRS, ChosenNLL, NLLConfig


def _config(out, batch_size):
    return TrainConfig(method="test-nll", model="random:tiny", out=str(out), max_steps=3, batch_size=batch_size,
                       lr=5e-3, device="cpu", seed=0, warmup_ratio=0.0,
                       lora=LoraSpec(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))


def _worker(rank, world, port, out):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    config = _config(out, batch_size=2)
    bundle = load_model(ModelSpec(name="random:tiny", device="cpu", seed=0), lora=config.lora)
    train(config, PAIRS, bundle=bundle, objective=ChosenNLL(NLLConfig()), progress=False)
    torch.distributed.destroy_process_group()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_process_gloo_matches_single_process_global_batch(tmp_path):
    single_cfg = _config(tmp_path / "single", batch_size=4)
    single_bundle = load_model(ModelSpec(name="random:tiny", device="cpu", seed=0), lora=single_cfg.lora)
    single = train(single_cfg, PAIRS, bundle=single_bundle, objective=ChosenNLL(NLLConfig()), progress=False)
    mp.spawn(_worker, args=(2, _free_port(), tmp_path / "ddp"), nprocs=2, join=True)
    a = list(read_jsonl(single.log_path))
    b = list(read_jsonl(tmp_path / "ddp" / "train_log.jsonl"))
    assert len(a) == len(b) == 3
    for row_a, row_b in zip(a, b):
        assert abs(row_a["loss"] - row_b["loss"]) < 1e-5
        assert abs(row_a["grad_norm"] - row_b["grad_norm"]) < 1e-4
