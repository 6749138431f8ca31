"""The benchmark: ``python -m bench`` (see its ``--help``), a developer tool beside the library, outside its wheel."""
