"""A working plugin in the same distribution: it must load next to the broken ones."""
import gemkit
from gemkit_broken._scorers import LengthScorer


@gemkit.hookimpl
def register_scorers(register):
    register(LengthScorer)
