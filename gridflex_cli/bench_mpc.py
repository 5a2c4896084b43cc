"""Commands registered on gridflex_cli.app (filled in by its owner)."""
