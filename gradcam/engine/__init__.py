"""The engine: the ``Model`` type, the graph runner, the compiled passes, the CAM methods,
the batched engine and the overlay. Nothing here knows where a model came from."""

from .baselines import BASELINES
from .cam import CamTensors, compute, heatmap, upsample
from .graph import SEPARATOR
from .methods import SCORECAM_DEFAULT_CHANNELS
from .model import PREPROCESSING, sha256_of_weights
from .overlay import colorize, strongest_colour

__all__ = ["BASELINES", "PREPROCESSING", "SCORECAM_DEFAULT_CHANNELS", "SEPARATOR", "CamTensors", "colorize",
           "compute", "heatmap", "sha256_of_weights", "strongest_colour", "upsample"]
