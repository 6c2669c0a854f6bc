"""The package version (independent of the checkpoint and export format versions)."""

__version__ = "0.1.0"
