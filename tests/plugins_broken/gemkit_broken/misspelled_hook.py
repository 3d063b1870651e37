"""Implements ``register_scorer`` (singular): no such hook, caught by ``pm.check_pending()``."""
import gemkit


@gemkit.hookimpl
def register_scorer(register):
    raise AssertionError("never called")
