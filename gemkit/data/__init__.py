"""Preference data: the record type, readers, validation, overlap checks and the built-in set.

``gemkit.data.validate`` (token statistics) is imported on demand: it needs the tokenizer stack.
"""
from gemkit.data.arithmetic import (
                                 builtin_heldout,
                                 builtin_heldout_pairs,
                                 builtin_train_pairs,
                                 extract_final_answer,
                                 save_builtin,
)
from gemkit.data.overlap import OverlapReport, normalise, prompt_overlap
from gemkit.data.readers import (
                                 load_pairs,
                                 pairs_from_dataset,
                                 parse_mapping,
                                 read_pairs,
                                 read_prompts,
                                 read_rows,
                                 require_fields,
)
from gemkit.data.records import Message, PreferencePair, Text, as_messages, split_conversation

__all__ = [
    "Message", "OverlapReport", "PreferencePair", "Text", "as_messages", "builtin_heldout", "builtin_heldout_pairs",
    "builtin_train_pairs", "extract_final_answer", "load_pairs", "normalise", "pairs_from_dataset", "parse_mapping",
    "prompt_overlap", "read_pairs", "read_prompts", "read_rows", "require_fields", "save_builtin",
    "split_conversation",
]
