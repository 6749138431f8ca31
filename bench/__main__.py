"""``python -m bench``: the benchmark (see bench/suite.py)."""

import sys

from bench.suite import main

sys.exit(main(sys.argv[1:]))
