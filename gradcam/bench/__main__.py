"""``python -m gradcam.bench``: the benchmark (see gradcam/bench/suite.py)."""

import sys

from gradcam.bench.suite import main

sys.exit(main(sys.argv[1:]))
