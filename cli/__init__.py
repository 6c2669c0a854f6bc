"""Command-line app for wavenet (installed as the import package `wavenet_cli`)."""
