"""CLI commands: each parses its options, calls one core function, renders the result."""
