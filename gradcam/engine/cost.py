"""What an explanation will cost, from the model's structure, before any pass runs.

The sandbox bounds *loading* a model file, not explaining it: a 21 kB ``.keras``
file (a 2048 x 2048 input, one 1x1 convolution of F filters, pooling, a small
Dense head) loads in milliseconds, then its top-5 Grad-CAM holds ~100 MB per
filter in the one process every dashboard session shares. So the engine adds up
what a pass will hold and refuses above a budget, with one sentence.

The estimate. Keras built every layer's output shape from the config when the
model was made (symbolic tensors: nothing was allocated), so per photo

- S = the sum of every layer's output size (the input included), in floats:
  what a taped forward pass keeps for its backward pass;
- M = the largest single layer output: what a forward pass without a tape holds
  at once is a few of those (a layer's input, its output, a skip connection).

and by what the method keeps (its ``kind``):

- gradient: S for the forward pass, plus K targets' gradients flowing back
  through the network two layers at a time: S + 2 K M;
- activation (Eigen-CAM): a forward pass, no tape: 3 M + the captured layer;
- perturbation: the first pass (as activation), then batches of B perturbed
  copies through the network without a tape: B x 3 M;
- pixel-gradient: two taped passes down to the pixels (guided and, for Guided
  Grad-CAM, the ordinary one): 2 (S + 2 K M);
- second-order gradient (ShapleyCAM): twice the gradient estimate;
- full-gradient (FullGrad): every layer's gradient for each target: S (1 + K);
- combined (RefineCAM, SESS): one base pass at a time, or SESS's batch of B
  windows scored without a tape, whichever is larger.

Against the 1x1-convolution model (top-5 Grad-CAM) the estimate is 1.7x the
review's 106 MB per filter at 2048 px, and 3.4x what was measured here at 1024 px
with 6 filters (276 MB estimated, 80 MB seen): it errs towards refusing, and a test
keeps it from ever falling below what a pass really holds. The default budget is
2 GB (GRADCAM_EXPLAIN_MEMORY_MB): every built-in method on EfficientNet-Lite0 is
estimated under 0.5 GB, and the hostile model's top-5 at 4.2 GB is refused.

Attention. A transformer's largest tensors are not its layers' outputs but its attention
scores, inside the attention layer: heads x queries x keys floats per attention layer (for
window attention, per window), held twice (before and after the softmax) for the backward
pass. They are counted in S, and the largest in M: an own model that reshapes a 256 x 256
photo into 65,536 tokens for one attention head declares 17 GB of scores in a file of a few
kilobytes, and is refused before any pass. KerasHub's blocks, which the functional graph
does not show (``inner.py``), are counted from the shapes seen when the model was traced.

Scoring maps (deletion and insertion curves, ROAD, and so the faithfulness
check, rank_methods and the Batch page's AUC) runs batches of C perturbed
photos through the network without a tape: C x 3 M, checked against the same
budget before the first batch (``check_forward_batch``). On the hostile model
that is 24 GB for C = 20 and refused; on EfficientNet-Lite0 96 MB.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ..errors import ExplanationTooCostly
from .tokens import is_attention

FLOAT_BYTES = 4
# What one explanation may hold in memory: GRADCAM_EXPLAIN_MEMORY_MB overrides it.
DEFAULT_MEMORY_MB = 2048
LIVE_FORWARD_TENSORS = 3  # input, output and one skip connection of the widest layer
SCORE_COPIES = 2  # attention scores before and after their softmax, both kept for the backward pass


@dataclass(frozen=True)
class Activations:
    total: int  # S: floats per photo, every layer's output plus the input
    largest: int  # M: the largest single one, the input included (a forward pass holds it)
    largest_layer: int  # the largest layer output: gradients never flow back into the input


def memory_budget_bytes() -> int:
    try:
        megabytes = int(os.environ.get("GRADCAM_EXPLAIN_MEMORY_MB", "").strip() or DEFAULT_MEMORY_MB)
    except ValueError:
        megabytes = DEFAULT_MEMORY_MB
    return max(megabytes, 1) * 2**20


def _size(shape, height: int, width: int) -> int:
    """Floats per photo in a (batch, ...) shape; an unknown spatial size counts as the
    model's input size (an upper bound for networks that only downsample)."""
    dims = list(shape)[1:]
    known = []
    for axis, dim in enumerate(dims):
        if dim is None:
            dim = (height, width)[axis] if axis < 2 and len(dims) >= 3 else max(height, width)
        known.append(max(int(dim), 1))
    return math.prod(known) if known else 1


def activations(model) -> Activations:
    """S and M for ``model`` (a gradcam ``Model``), from its layers' output shapes and its
    attention layers' scores."""
    from .graph import inner_layers, walk_layers

    height, width = model.input_size
    pixels = height * width * model.channels
    sizes = []
    scores = []  # per attention layer: heads x queries x keys, before and after the softmax
    for _, layer in walk_layers(model.keras):
        if type(layer).__name__ == "InputLayer":
            continue
        if is_attention(layer):
            scores.append(SCORE_COPIES * _attention_floats(layer, height, width))
        try:
            outputs = layer.output
        except (AttributeError, ValueError):  # never called, or shared by several calls
            continue
        for output in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            shape = getattr(output, "shape", None)
            if shape is not None:
                sizes.append(_size(shape, height, width))
    for record in inner_layers(model.keras):  # what custom layers (KerasHub's encoders) run inside
        sizes.append(record.batch * math.prod(max(int(d or 1), 1) for d in record.shape))
        if record.role == "attention":
            scores.append(SCORE_COPIES * record.batch * record.heads * record.query_tokens * record.key_tokens)
    largest_layer = max([*sizes, *scores], default=1)
    return Activations(total=pixels + sum(sizes) + sum(scores), largest=max(pixels, largest_layer),
                       largest_layer=largest_layer)


def _attention_floats(layer, height: int, width: int) -> int:
    """heads x queries x keys of a Keras attention layer in the functional graph."""
    heads = getattr(layer, "_num_heads", None) or getattr(layer, "num_heads", None) or 1
    try:
        node = layer._inbound_nodes[0]
        query = node.input_tensors[0].shape
        key = (node.input_tensors[1] if len(node.input_tensors) > 1 else node.input_tensors[0]).shape
    except (AttributeError, IndexError):
        return 0
    tokens = [int(shape[1]) if len(shape) >= 3 and shape[1] is not None else height * width for shape in (query, key)]
    return int(heads) * tokens[0] * tokens[1]


def explanation_bytes(model, method, targets: int, photos: int = 1, batch: int | None = None) -> int:
    """The memory one explanation call holds at its peak (see the module's note).
    ``targets``: classes explained in the pass; ``batch``: perturbed copies per pass."""
    from .methods import PERTURBATION_BATCH

    found = activations(model)
    total, largest = found.total, found.largest
    targets = max(int(targets), 1)
    if method.kind == "gradient":
        floats = total + 2 * targets * found.largest_layer
        if method.second_order:  # the Hessian-vector product runs the backward pass once more, taped
            floats *= 2
    elif method.kind == "combined":  # one base pass at a time, and SESS's windows scored in batches
        copies = PERTURBATION_BATCH if batch is None else max(int(batch), 1)
        floats = max(total + 2 * targets * found.largest_layer, copies * LIVE_FORWARD_TENSORS * largest)
    elif method.kind == "full-gradient":  # every layer's gradient, per target, kept at once
        floats = total * (1 + targets)
    elif method.kind == "activation":
        floats = (LIVE_FORWARD_TENSORS + 1) * largest
    elif method.kind == "perturbation":
        copies = PERTURBATION_BATCH if batch is None else max(int(batch), 1)
        floats = max(total, copies * LIVE_FORWARD_TENSORS * largest)
    else:  # pixel-gradient: the gradient reaches the pixels, the widest tensor of all
        floats = 2 * (total + 2 * targets * largest)
    return floats * FLOAT_BYTES * max(int(photos), 1)


def _megabytes(n: int) -> str:
    return f"{n / 2**30:,.1f} GB" if n >= 2**30 else f"{n / 2**20:,.0f} MB"


def check_explanation(model, method, targets: int, photos: int = 1, batch: int | None = None) -> int:
    """Raise ExplanationTooCostly (one sentence) when the explanation is over budget;
    else return its estimate in bytes. ``method``: a ``Method`` or its registry key."""
    if isinstance(method, str):
        from .methods import method as method_named

        method = method_named(method)
    need = explanation_bytes(model, method, targets, photos, batch)
    budget = memory_budget_bytes()
    if need > budget:
        height, width = model.input_size
        what = f"{targets} class{'es' if targets != 1 else ''}"
        raise ExplanationTooCostly(
            f"Explaining {what} with {method.display_name} on this {width} x {height} model would need about "
            f"{_megabytes(need)} of memory; the limit is {_megabytes(budget)}. Try fewer classes, a lighter "
            "method or a model with a smaller input."
        )
    return need


def forward_batch_bytes(model, copies: int) -> int:
    """The memory a forward pass without a tape holds over ``copies`` inputs at once (a
    faithfulness curve's batch of perturbed photos): per copy, a few of the widest tensors."""
    return max(int(copies), 1) * LIVE_FORWARD_TENSORS * activations(model).largest * FLOAT_BYTES


def check_forward_batch(model, copies: int) -> int:
    """Raise ExplanationTooCostly (one sentence) when scoring a map, ``copies`` perturbed photos
    per forward pass, is over the budget; else return its estimate in bytes."""
    need = forward_batch_bytes(model, copies)
    budget = memory_budget_bytes()
    if need > budget:
        height, width = model.input_size
        raise ExplanationTooCostly(
            f"Scoring a map on this {width} x {height} model ({copies} perturbed photos at a time) would need "
            f"about {_megabytes(need)} of memory; the limit is {_megabytes(budget)}. Try a model with a smaller "
            "input."
        )
    return need
