"""A ``load_model`` implementation with a bug: it raises for ``broken:*`` names, passes on the rest."""
import gemkit


@gemkit.hookimpl
def load_model(spec, role):
    if spec.name.startswith("broken:"):
        raise RuntimeError(f"bad_loader cannot parse {spec.name!r}")
    return None
