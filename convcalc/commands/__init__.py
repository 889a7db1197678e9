"""The commands of the CLI, one module each, imported only when invoked (see ``cli.COMMANDS``)."""
