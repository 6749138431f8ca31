"""The bench's sandbox task, in a module of its own: a worker imports a task's module
when it unpickles the task, after it has given up root (gradcam.intake.sandbox), so the
module may import only what the worker has already loaded (NumPy here). The bench's
suite.py imports argparse, subprocess and more, which such a worker cannot read."""

import numpy as np


def display_sized_pixels(data: bytes, width: int, height: int) -> dict:
    """A sandbox task that decodes nothing: what crossing into the worker and back costs."""
    return {"pixels": np.zeros((height, width, 3), np.uint8), "size": (width, height)}
