"""One DPO and one SEGA step on CUDA give the loss the CPU gives (``gpu`` marker: skipped without CUDA).

DPO: the same tiny LoRA model and pairs on both devices, fp32, loss at 1e-4 (GPU reductions differ
in order). SEGA: CUDA sampling draws other candidates than the CPU, so the CUDA step's loss is
recomputed on a CPU copy of the model from the candidates it sampled (tests/_objective_harness.py).
"""
from __future__ import annotations

import copy

import pytest
import torch
from _objective_harness import PROMPTS, FixedScorer, independent_logps, lora_context, spy_on_groups

from gemkit.builtin import sega as sega_module
from gemkit.data.records import PreferencePair
from gemkit.registry import registry

pytestmark = pytest.mark.gpu

PAIRS = [PreferencePair(f"What is {i} + 1?", f"Final Answer: {i + 1}", f"Final Answer: {i}", id=f"p{i}")
         for i in range(3)]


def test_dpo_step_loss_on_cuda_equals_cpu(tmp_path):
    losses = []
    for device in ("cpu", "cuda"):
        ctx = lora_context(tmp_path / device, "dpo", device=device)
        objective = registry("objective").get("dpo").build({})
        losses.append(float(objective.compute_loss(ctx, PAIRS).loss))
    assert abs(losses[0] - losses[1]) < 1e-4
    assert losses[0] > 0


def test_sega_step_loss_on_cuda_equals_cpu_recomputation(tmp_path, monkeypatch):
    """S = [3, 1, 0, 2] ⇒ A = [1.5, −0.5, −1.5, 0.5]; L = mean over prompts of −(1/4) Σ A_i log π(a_i|q)."""
    ctx = lora_context(tmp_path, "sega", device="cuda")
    cpu_model = copy.deepcopy(ctx.model).to("cpu")
    objective = registry("objective").get("sega").build({"k": 4, "max_new_tokens": 5, "temperature": 1.0})
    objective.scorer = FixedScorer([3.0, 1.0, 0.0, 2.0])
    groups = spy_on_groups(monkeypatch, sega_module)
    torch.manual_seed(0)
    output = objective.compute_loss(ctx, PROMPTS)
    assert output.loss.device.type == "cuda"
    advantages = torch.tensor([1.5, -0.5, -1.5, 0.5] * 2)
    with torch.no_grad():
        sums = torch.stack([row.sum() for row in independent_logps(cpu_model, groups[0].batch.to("cpu"))])
    expected = -(advantages * sums).view(2, 4).sum(-1).div(4).mean()
    assert abs(float(output.loss) - float(expected)) < 1e-4
