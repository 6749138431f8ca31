"""The test suite (a package so that `python -m tests.fuzz` finds it before any installed "tests")."""
