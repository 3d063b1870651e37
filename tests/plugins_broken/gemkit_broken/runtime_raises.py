"""Loads and registers fine; its scorer raises when it is used."""
import gemkit
from gemkit_broken._scorers import RaisingScorer


@gemkit.hookimpl
def register_scorers(register):
    register(RaisingScorer)
