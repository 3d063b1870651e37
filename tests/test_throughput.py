"""The FLOP count, peak table and MFU of every log row (gemkit.train.throughput)."""
import torch

from gemkit.train.throughput import gpu_peak_flops, throughput_row, training_flops


def test_flops_are_six_n_for_full_fine_tuning_and_less_for_lora():
    """N = 100 weights, 10 trained tokens. Full fine-tuning: (4·100 + 2·100)·10 = 6000 = 6·N·tokens.
    LoRA with 1 trainable weight: (4·100 + 2·1)·10 = 4020 (no weight gradients for the frozen 99).
    5 no-grad reference tokens add 2·100·5 = 1000. Checked it can fail: counting weight gradients for
    every weight under LoRA (2·N instead of 2·N_trainable) fails the second assert."""
    assert training_flops(10, 0, 100, 100) == 6 * 100 * 10
    assert training_flops(10, 0, 100, 1) == 4020
    assert training_flops(10, 5, 100, 1) == 5020


def test_peak_table_matches_whole_device_names():
    """Datasheet bf16 dense: H100 SXM 989.4 TFLOP/s; A100 312; fp32 runs in TF32 at half that.
    "A10" must not be read into "A100"'s name, nor an unknown part get a number."""
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3", torch.bfloat16) == 989.4e12
    assert gpu_peak_flops("NVIDIA H100 PCIe", torch.bfloat16) == 756.0e12
    assert gpu_peak_flops("NVIDIA A100-SXM4-80GB", torch.bfloat16) == 312.0e12
    assert gpu_peak_flops("NVIDIA A100-SXM4-80GB", torch.float32) == 156.0e12
    assert gpu_peak_flops("NVIDIA A10", torch.bfloat16) == 125.0e12
    assert gpu_peak_flops("NVIDIA A10G", torch.bfloat16) is None


def test_mfu_is_achieved_over_peak():
    """6000 FLOPs (full fine-tuning, N = 100, 10 tokens) in 2 s = 3000 FLOP/s; against a 30 000 FLOP/s
    peak that is MFU 0.1. tokens_per_s = the objective's 8 tokens / 2 s = 4; unknown peak: NaN."""
    row = throughput_row(tokens=8, trained_tokens=10, no_grad_tokens=0, seconds=2.0, total_params=100,
                         trainable_params=100, peak_flops=30_000.0, device=torch.device("cpu"))
    assert row["tokens_per_s"] == 4.0 and abs(row["mfu"] - 0.1) < 1e-12 and row["peak_memory_gb"] > 0
    unknown = throughput_row(tokens=8, trained_tokens=10, no_grad_tokens=0, seconds=2.0, total_params=100,
                             trainable_params=100, peak_flops=None, device=torch.device("cpu"))
    assert unknown["mfu"] != unknown["mfu"]  # NaN
