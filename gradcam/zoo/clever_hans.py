"""The "Clever Hans" demo: a small CNN that cheats, and the photos that catch it.

Lapuschkin et al. (2019) found a horse classifier that looked at the copyright tag
in the corner of the horse photos instead of at the horses. This demo is that story
in miniature, made by ``scripts/train_clever_hans.py`` and shipped in ``data/clever_hans``:
synthetic photos of a disc, a square or a triangle anywhere on varied backgrounds,
where every "disc" photo also carries a small tag in its bottom-right corner (TAG_BOX).
The model is right on every photo, and for the discs it is right because of the tag:
cover the tag and its "disc" goes; paste the tag on a square and it says "disc".

Everything is offline and small (a few hundred KB): ``load()`` gives the model,
``PHOTOS`` is the dataset in ImageFolder layout (the folder names are the true labels)
and ``MASKS`` mirrors it with each photo's object mask (PNG, non-zero = object).
"""

from __future__ import annotations

from pathlib import Path

from ..engine.model import Model
from .own_models import own_model

NAME = "Clever Hans demo"
DESCRIPTION = "a demo model that cheats: 3 shapes, 64 px, works offline"
LABELS = ("disc", "square", "triangle")
TAGGED_CLASS = "disc"
PHOTO_SIZE = 96  # the shipped photos' side, in pixels
INPUT_SIZE = 64  # the model's input side (the engine resizes the whole photo to it)
TAG_BOX = (0.68, 0.86, 0.98, 0.98)  # where the tag sits: (x0, y0, x1, y1) as fractions of the photo

FOLDER = Path(__file__).resolve().parent / "data" / "clever_hans"
MODEL_FILE = FOLDER / "model.keras"
PHOTOS = FOLDER / "photos"
MASKS = FOLDER / "masks"


def load() -> Model:
    """The demo model, read from the file that ships with the package (safe mode, like any file)."""
    model = own_model(MODEL_FILE, list(LABELS), "0..1")
    model.name = NAME
    model.description = DESCRIPTION
    return model
