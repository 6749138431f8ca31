"""Layer names as the pages show them: long, nested names stay readable in a narrow
sidebar or under a small thumbnail."""

from __future__ import annotations

import re

import gradcam
from gradcam.engine import SEPARATOR

from dashboard.safe_text import md

ZERO_WIDTH_SPACE = "\u200b"
# What the sidebar's select box shows of an option before it cuts it ("transformer_block_12/ln_1  (14x"), measured
# in Chromium at the sidebar's default width (the same at 1400 and 390 px).
SIDEBAR_BOX_FITS = 30
NUMBERED_BLOCK = re.compile(r"(block|blocks|stage)_\d+$")  # a numbered block or stage that holds the layer


def layer_option(layer: gradcam.TargetLayer) -> str:
    """A picker's text for a layer: its own name and shape first, then the nested model
    it sits in, so a box that cuts long text cuts the path, not the name
    ("out_relu  (3x3x1280) · in mobilenetv2_1.00_96")."""
    *outer, own = layer.name.split(SEPARATOR)
    if outer and NUMBERED_BLOCK.search(outer[-1]):
        # Inside a transformer block (KerasHub: "transformer_block_12/ln_1"): "ln_1" alone says nothing.
        own = outer.pop() + SEPARATOR + own
    height, width, channels = layer.shape
    # A transformer's token layer names its patch grid: "block11_norm1  (14x14 tokens + 1 class token, 768)".
    size = layer.grid.describe(channels) if layer.grid is not None else f"{height}x{width}x{channels}"
    text = f"{own}  ({size})"
    if layer.kind:
        text += f" · {layer.kind}, not a feature layer"
    return text + (f" · in {SEPARATOR.join(outer)}" if outer else "")


def whole_option(layer: gradcam.TargetLayer) -> str | None:
    """The layer's whole option text as Markdown that wraps, to show under a box that cuts it (a transformer block's
    sub-layer with its token grid and path), or None when the box shows it all. It wraps at spaces and between the
    parts of a path, never inside a part ("vit_ encoder"): each part fits the sidebar's width."""
    text = layer_option(layer)
    return breakable(text, underscores=False) if len(text) > SIDEBAR_BOX_FITS else None


def breakable(name: str, underscores: bool = True) -> str:
    """A layer name as Markdown that wraps at its slashes (and underscores), never mid-word."""
    text = md(name).replace("/", "/" + ZERO_WIDTH_SPACE)
    return text.replace("\\_", "\\_" + ZERO_WIDTH_SPACE) if underscores else text
