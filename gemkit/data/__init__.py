"""Preference data: the record type, readers, validation, overlap checks and the built-in set."""
from gemkit.data.records import Message, PreferencePair, Text, as_messages, split_conversation

__all__ = ["Message", "PreferencePair", "Text", "as_messages", "split_conversation"]
