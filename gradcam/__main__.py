"""``python -m gradcam``: the command line (see gradcam/cli.py)."""

import sys

from gradcam.cli import main

sys.exit(main())
