"""The benchmark: ``python -m gradcam.bench`` (see its ``--help``). Not imported by the library."""
