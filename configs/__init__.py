"""Named presets shipped with wavenet (read with `wavenet.load_config(NAME)`)."""
