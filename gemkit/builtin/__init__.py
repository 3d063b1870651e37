"""gemkit's own plugins. Each module is registered exactly like a third-party plugin."""
