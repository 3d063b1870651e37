"""Random-initialised Llama models of real sizes, for tests and throughput benchmarks.

``random:tiny`` is the unit-test model (~3 M parameters, mostly the embedding); ``random:135m``,
``random:1b`` and ``random:8b`` mirror SmolLM2-135M, Llama-3.2-1B and Llama-3-8B shapes. All use the
embedded SmolLM2 tokenizer (vocabulary 49,152) so no download is ever needed.
"""
from __future__ import annotations

from typing import Any

from gemkit.errors import ModelLoadError

#: size -> LlamaConfig keyword arguments
SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=1024),
    "135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                 num_key_value_heads=3, max_position_embeddings=8192, rope_theta=100000.0),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, max_position_embeddings=8192, rope_theta=500000.0),
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, max_position_embeddings=8192, rope_theta=500000.0),
}


def random_config(size: str, tokenizer: Any) -> Any:
    from transformers import LlamaConfig

    if size not in SIZES:
        raise ModelLoadError(f"unknown random model size '{size}'; choose one of: {', '.join(SIZES)}")
    return LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=size in ("tiny", "135m"),
        **SIZES[size],
    )
