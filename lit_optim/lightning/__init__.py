"""The Lightning glue: mixin, callbacks, CLI and its jsonargparse types."""
