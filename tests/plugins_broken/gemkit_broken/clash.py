"""Registers a scorer named ``entropy``: must not silently shadow the built-in one."""
import gemkit
from gemkit_broken._scorers import ClashingEntropy


@gemkit.hookimpl
def register_scorers(register):
    register(ClashingEntropy)
