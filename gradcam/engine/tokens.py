"""Token layers as feature maps: the patch grid behind a (tokens, dim) output.

A Vision Transformer cuts the image into an h x w grid of patches, one token each,
and usually adds a few extra tokens that belong to no patch (a class token, a
distillation token, registers). A layer with a (tokens, dim) output is a feature
map once those are dropped and the rest is laid out again as the grid:

    tokens = extra + h * w

where h x w is the grid that the model's patch embedding produced (the last
feature-map layer before the tokens; its height and width), or failing that one
that the input size implies for a square patch size. Extra tokens come first (as
in ViT, DeiT and DINOv2's registers) and the patches follow row by row (row-major:
Keras' ``Reshape`` of an (h, w, dim) map), so the rebuilt grid is never transposed.

The reshape is a step of the graph runner (``graph.run_capturing_many``): every
method then sees an (h, w, dim) map and needs nothing of its own for tokens.
"""

from __future__ import annotations

from typing import NamedTuple

MAX_EXTRA_TOKENS = 16  # class + distillation + registers: DINOv2 uses 4 registers, some models 8 or 16
MAX_MERGES = 5  # patch-merging stages after the patch embedding (Swin has 3)
NO_GRADIENT = "no gradient reaches these tokens from the class score: pick an earlier layer"
ATTENTION_LAYERS = ("MultiHeadAttention", "GroupedQueryAttention")


class TokenGrid(NamedTuple):
    height: int  # rows of patches
    width: int  # columns of patches
    extra: int  # tokens before the patches (class, distillation, registers), dropped
    # True when no patch embedding gave the grid and it was read off the input size alone (a plain
    # reshape of pixels into tokens): a guess, which the pages say (``tokens_text``).
    guessed: bool = False

    @property
    def tokens_text(self) -> str:
        """'4x4 tokens + 1 class token': the grid and what was dropped."""
        if self.extra == 0:
            extra = ""
        elif self.extra == 1:
            extra = " + 1 class token"
        else:
            extra = f" + {self.extra} extra tokens (class, distillation or registers)"
        guess = ", a guess from the input size" if self.guessed else ""
        return f"{self.height}x{self.width} tokens{extra}{guess}"

    def describe(self, dim) -> str:
        """'4x4 tokens + 1 class token, 32', as the layer lists show it."""
        return f"{self.tokens_text}, {dim}"


def _divisor_grids(size: tuple[int, int], patches: int) -> list[tuple[int, int]]:
    """Grids (h, w) with h * w == patches that a square patch size cutting the input gives."""
    height, width = size
    grids = []
    for patch in range(1, min(height, width) + 1):
        if height % patch == 0 and width % patch == 0 and (height // patch) * (width // patch) == patches:
            grids.append((height // patch, width // patch))
    return grids


def infer_grid(tokens: int | None, patch_grids: list[tuple[int, int]], input_size: tuple | None) -> TokenGrid | None:
    """The grid behind ``tokens`` tokens, or None when it cannot be told.

    ``patch_grids``: the (height, width) of the feature maps before the token layer,
    latest first (the patch embedding's output is one of them); ``input_size``: the
    model's (height, width). The patch embedding's own grid wins; the input size is
    asked only when there is no feature map before (a patch embedding made of
    reshapes), and only a unique answer counts.
    """
    if not tokens:
        return None
    for height, width in patch_grids:
        if height and width and 0 <= tokens - height * width <= MAX_EXTRA_TOKENS and height * width > 1:
            return TokenGrid(int(height), int(width), int(tokens - height * width))
    # A hierarchical transformer (Swin) merges 2x2 neighbouring patches per stage: its later
    # stages' tokens lie on the patch grid halved, no extra tokens.
    for height, width in patch_grids[:1]:
        for times in range(1, MAX_MERGES + 1):
            step = 2 ** times
            if height and width and height % step == 0 and width % step == 0 \
                    and (height // step) * (width // step) == tokens and tokens > 1:
                return TokenGrid(int(height // step), int(width // step), 0)
    if patch_grids or input_size is None or None in input_size:
        return None  # the patch embedding's grid does not explain the count: guessing would mislead
    found = {(h, w, extra) for extra in range(0, MAX_EXTRA_TOKENS + 1)
             for h, w in _divisor_grids(input_size, tokens - extra) if h * w > 1}
    # Several readings (e.g. 16 tokens = 4x4 or 2x8 + ... ): prefer no extra tokens, then one.
    for extra in range(0, MAX_EXTRA_TOKENS + 1):
        options = [f for f in found if f[2] == extra]
        if len(options) == 1:
            return TokenGrid(*options[0])
        if len(options) > 1:
            return None
    return None


def to_grid(tokens, grid: TokenGrid):
    """(n, extra + h*w, dim) -> the extra tokens (n, extra, dim) and the grid (n, h, w, dim), row-major."""
    import tensorflow as tf

    extra = tokens[:, :grid.extra]
    patches = tokens[:, grid.extra:]
    return extra, tf.reshape(patches, (-1, grid.height, grid.width, tokens.shape[-1]))


def from_grid(extra, grid_map, grid: TokenGrid):
    """The inverse of ``to_grid``: the token sequence the next layers expect. ``extra``
    (the layer's own extra tokens, perhaps none) is repeated when the grid is a batch
    of perturbed copies of one image (Ablation-CAM)."""
    import tensorflow as tf

    count = tf.shape(grid_map)[0]
    dim = extra.shape[-1]  # static, as the next layers need; a substituted grid may not know it
    patches = tf.reshape(grid_map, (count, grid.height * grid.width, dim))
    if not grid.extra:
        return patches
    extra = tf.repeat(extra, count // tf.shape(extra)[0], axis=0)
    return tf.concat([extra, patches], axis=1)


def is_attention(layer) -> bool:
    return type(layer).__name__ in ATTENTION_LAYERS


def cannot_infer(name: str) -> str:
    return (f'The token grid of layer "{name}" cannot be told from its token count and the model\'s patch '
            "embedding, so it cannot be shown as a map.")
