"""Raises while registering: the host must name this plugin and keep the others."""
import gemkit


@gemkit.hookimpl
def register_scorers(register):
    raise RuntimeError("config file ~/.broken.toml is missing")
