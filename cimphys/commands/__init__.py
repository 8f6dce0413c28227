"""Subcommands of the ``cimphys`` command, one module each (see ``cimphys.cli``)."""
