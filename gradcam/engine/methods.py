"""The CAM methods: each turns what a pass computed into a map.

One registry, ``METHODS``, read by the engine, the dashboard, the CLI, the
reports and the benchmark. A method is one of four kinds, and the pipeline in
``cam.py`` runs each kind its own way:

- ``gradient``: from the layer's activations A (h, w, k) and the gradients
  G = dS/dA (K, h, w, k) of K target scores, one compiled pass.
- ``activation``: from A alone (no backward pass), one compiled pass.
- ``perturbation``: from the target's scores of perturbed copies (masked inputs
  for Score-CAM, ablated channels for Ablation-CAM, covered patches for
  Occlusion), run in batches.
- ``pixel-gradient``: from the gradient of the score with respect to the input pixels,
  with the guided backpropagation rule at every ReLU-like activation.
- ``attention``: from every attention layer's scores (and their gradients), for
  transformers: attention rollout (``rollout.py``), on the patch grid.
- ``full-gradient``: FullGrad, from the gradients at the input and at every layer
  with a bias, whatever layer is chosen (``passes.fullgrad_pass``).
- ``combined``: a meta-method that runs another method several times and fuses
  the maps (RefineCAM over layers, SESS over scales and windows; ``combined.py``).

Some gradient methods ask the pass for more than (A, G): ``second_order``
(ShapleyCAM: the Hessian-vector product H.A from a nested tape) or their own
``target_score`` (FinerCAM: the class against its nearest classes, not a row
over the logits). KPCA-CAM's ``from_features`` runs on NumPy after the pass
(scikit-learn's KernelPCA).

Where pytorch-grad-cam 1.5 (the field's reference library) has a method, the
formula here is the one it computes; the docstrings say where they differ.
Functions named ``*_map`` run inside ``tf.function`` and return
(before_relu (K, h, w), channel_weights (K, k)); functions named ``*_weights``
work on NumPy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .rollout import gradient_rollout_map, rollout_map

# Faster Score-CAM's default budget (tf-keras-vis' max_N): the channels with the
# largest spatial variance. Measured against all 1280 channels at Lite0's last layer
# on the nine sample photos (samples/ and scikit-image's), the lowest correlation
# was 0.907 with 16 channels, 0.938 with 32, 0.965 with 64 (`python -m bench`
# measures it again). 32 is the smallest budget that clears 0.9 with a margin, and
# it is one batch of masked inputs.
SCORECAM_DEFAULT_CHANNELS = 32
PERTURBATION_BATCH = 32  # masked inputs or ablated activations per forward pass: memory stays bounded


@dataclass(frozen=True, kw_only=True)
class Method:
    """One CAM method: what it is called, where it comes from, and what the pipeline
    must do to make its map. ``kind`` decides how the pipeline runs it; nothing
    outside this registry tests a method's key."""

    name: str  # the registry key, e.g. "scorecam"
    display_name: str
    paper: str  # author, year and title
    description: str  # one line, for pickers and help texts
    kind: str  # one of KINDS
    needs_gradients: bool
    class_specific: bool = True  # False: the same map for every class (Eigen-CAM)
    make_map: Callable | None = None  # gradient/activation kinds (TensorFlow, inside the compiled pass)
    weights_from_scores: Callable | None = None  # perturbation kind (NumPy)
    # perturbation kind: "input" (masked photos), "channels" (ablated maps) or "patches" (covered squares)
    perturbs: str | None = None
    channel_budget: bool = False  # takes max_channels: only the channels with the largest variance
    slow: bool = False  # many forward passes: the dashboard shows progress
    resolution: str = "layer"  # "layer": the map has the target layer's grid; "pixels": the network's input grid
    # Where the literature showed that this method's map survives randomizing the
    # model's weights (fails the sanity check), the paper and what it found; "" when
    # no such result is known. Pages mark it wherever the method is recommended.
    known_sanity_failure: str = ""
    # Inside the pass, the scores from (logits, target rows) when they are not rows @ logits (FinerCAM).
    target_score: Callable | None = None
    second_order: bool = False  # make_map(A, G, H.A): the pass adds a Hessian-vector product (ShapleyCAM)
    from_features: Callable | None = None  # activation kind on NumPy: A (h, w, k) -> (map (1, h, w), weights (1, k))
    combines: str = ""  # combined kind: the registry key of the method it runs several times
    fuses: str = ""  # combined kind: "layers" (RefineCAM) or "windows" (SESS), what it runs the method over
    ignores_layer: bool = False  # the map is built from every layer at once (FullGrad): the layer picker does nothing
    random_weights: bool = False  # channels weighted at random (RandomCAM): a floor to beat, its map means nothing

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f'Unknown method kind "{self.kind}"; one of: {", ".join(KINDS)}.')

    @property
    def layer_free(self) -> bool:
        """The map does not depend on the layer (Guided Backpropagation, Occlusion, attention rollout,
        FullGrad)."""
        return (self.kind == "attention" or (self.kind == "pixel-gradient" and self.make_map is None)
                or self.perturbs == "patches" or self.ignores_layer)

    @property
    def one_pass(self) -> bool:
        """The map follows from (A, G) of one ordinary pass at one layer: the methods that the
        batched engine and the one-backward-pass layer strip can run."""
        return (self.kind in ("gradient", "activation") and self.make_map is not None
                and self.target_score is None and not self.second_order)

    @property
    def progress_unit(self) -> str:
        """What a slow method's progress counts: Occlusion covers patch positions, the others
        mask or switch off channels (feature maps); RefineCAM and SESS run their base method's passes."""
        if self.kind == "combined":
            return "passes"
        return "patch positions" if self.perturbs == "patches" else "channels"

    @property
    def works_on(self) -> str:
        """What a layer-free method's map is made from, for labels: "input pixels" or "attention layers"."""
        if self.kind == "full-gradient":
            return "input pixels and every bias"
        return "attention layers" if self.kind == "attention" else "input pixels"


KINDS = ("gradient", "activation", "perturbation", "pixel-gradient", "attention", "full-gradient", "combined")


# --- channel weights from gradients ---------------------------------------------


def _weighted_sum(features, weights):
    import tensorflow as tf

    return tf.einsum("hwk,nk->nhw", features, weights), weights


def gradcam_map(features, grads):
    """Grad-CAM (Selvaraju et al. 2017): w_k = the spatial mean of dS/dA_k."""
    import tensorflow as tf

    return _weighted_sum(features, tf.reduce_mean(grads, axis=(1, 2)))


def gradcam_plus_plus_map(features, grads):
    """Grad-CAM++ (Chattopadhyay et al. 2018): positive gradients weighted per
    position by alpha, the closed form for an exponential score. pytorch-grad-cam
    adds 1e-6 to alpha's denominator; with gradients this small that shifts the map
    (correlation 0.997-0.9999 with ours): we compute the exact formula."""
    import tensorflow as tf

    g2 = grads * grads
    g3 = g2 * grads
    activation_sum = tf.reduce_sum(features, axis=(0, 1))  # (k,)
    denominator = 2.0 * g2 + activation_sum * g3
    alpha = tf.math.divide_no_nan(g2, tf.where(tf.abs(denominator) > 1e-12, denominator, 0.0))
    return _weighted_sum(features, tf.reduce_sum(alpha * tf.nn.relu(grads), axis=(1, 2)))


def xgradcam_map(features, grads):
    """XGrad-CAM (Fu et al. 2020): w_k = sum(G_k * A_k) / (sum(A_k) + 1e-7), as
    pytorch-grad-cam's XGradCAM."""
    import tensorflow as tf

    activation_sum = tf.reduce_sum(features, axis=(0, 1))  # (k,)
    weights = tf.reduce_sum(grads * features, axis=(1, 2)) / (activation_sum + 1e-7)
    return _weighted_sum(features, weights)


# Element-wise methods weight each position, not each channel: the channel weights
# they report are the spatial means of their per-position weights.


def hirescam_map(features, grads):
    """HiResCAM (Draelos & Carin 2020): sum_k G_k * A_k, element-wise, no spatial
    averaging; provably faithful for models that end in global average pooling."""
    import tensorflow as tf

    return tf.reduce_sum(grads * features, axis=-1), tf.reduce_mean(grads, axis=(1, 2))


def gradcam_elementwise_map(features, grads):
    """Grad-CAM element-wise (pytorch-grad-cam's GradCAMElementWise):
    sum_k ReLU(G_k * A_k)."""
    import tensorflow as tf

    return tf.reduce_sum(tf.nn.relu(grads * features), axis=-1), tf.reduce_mean(grads, axis=(1, 2))


def layercam_map(features, grads):
    """LayerCAM (Jiang et al. 2021): sum_k ReLU(G_k) * A_k, position by position."""
    import tensorflow as tf

    positive = tf.nn.relu(grads)
    return tf.reduce_sum(positive * features, axis=-1), tf.reduce_mean(positive, axis=(1, 2))


# --- principal components -------------------------------------------------------


def _projection(values):
    """(n, h, w, k) -> ((n, h*w) projections on the first principal component of the
    values centred per channel, (n, k) that component), as pytorch-grad-cam's
    get_2d_projection; the SVD leaves the sign arbitrary."""
    import tensorflow as tf

    shape = tf.shape(values)
    flat = tf.reshape(values, (shape[0], shape[1] * shape[2], shape[3]))
    centred = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
    _, _, v = tf.linalg.svd(centred, full_matrices=False)  # v: (n, k, r)
    return tf.einsum("npk,nk->np", centred, v[:, :, 0]), v[:, :, 0]


def first_component(values):
    """(n, h, w, k) -> (n, h, w): the values, centred per channel, projected on
    their first principal component, as pytorch-grad-cam's get_2d_projection.

    The SVD's sign is arbitrary (pytorch-grad-cam leaves it so, and a map can come
    out inverted): the projection is flipped when its negative side is the larger,
    the sign correction of Seg-Eigen-CAM (2025). Centred data project to values
    that sum to zero, so both sides always carry the same mass; they are compared
    by energy (sum of squares) instead, which favours the side with the strong,
    compact response (the object) over the weak, spread one (the background).
    """
    import tensorflow as tf

    projection, component = _projection(values)
    positive = tf.reduce_sum(tf.square(tf.nn.relu(projection)), axis=1)
    negative = tf.reduce_sum(tf.square(tf.nn.relu(-projection)), axis=1)
    sign = tf.where(negative > positive, -1.0, 1.0)  # (n,)
    return tf.reshape(projection * sign[:, None], tf.shape(values)[:3]), component * sign[:, None]


def eigencam_map(features, grads):
    """Eigen-CAM (Muhammad & Yeasin 2020): the activations' first principal
    component. Gradient-free and class-agnostic: every class gets this map."""
    return first_component(features[None])  # (1, h, w): the pipeline repeats it for every target


def eigengradcam_map(features, grads):
    """Eigen-Grad-CAM (pytorch-grad-cam's EigenGradCAM): the first principal
    component of G * A, so class-specific."""
    return first_component(grads * features[None])


def seg_eigencam_map(features, grads):
    """Seg-Eigen-CAM (Chung & Ying 2025), as pytorch-grad-cam's SegEigenCAM: the
    first principal component of |G| * A, flipped when |min| > |max| (the paper's
    Eq. 13; Eigen-CAM here compares the two sides' energy instead)."""
    import tensorflow as tf

    values = tf.abs(grads) * features[None]
    projection, component = _projection(values)
    flip = tf.abs(tf.reduce_min(projection, axis=1)) > tf.abs(tf.reduce_max(projection, axis=1))
    sign = tf.where(flip, -1.0, 1.0)
    return tf.reshape(projection * sign[:, None], tf.shape(values)[:3]), component * sign[:, None]


# --- more channel weights: FEM, ShapleyCAM, RandomCAM, KPCA-CAM --------------------

FEM_SIGMAS = 2.0  # pytorch-grad-cam's FEM default k: a position counts when above mean + 2 std


def fem_map(features, grads):
    """FEM (Fuad et al. 2020), as pytorch-grad-cam's FEM: a channel's weight is the
    share of its positions above its mean + 2 standard deviations (population std),
    no gradients, the same map for every class. Xplique's FEM weights by the channel's
    mean instead: this is the reference's."""
    import tensorflow as tf

    mean = tf.reduce_mean(features, axis=(0, 1))
    std = tf.math.reduce_std(features, axis=(0, 1))
    above = tf.cast(features > mean + FEM_SIGMAS * std, features.dtype)
    weights = tf.reduce_mean(above, axis=(0, 1))[None]  # (1, k)
    return _weighted_sum(features, weights)


def shapleycam_map(features, grads, hessian_times_activations):
    """ShapleyCAM (Cai 2025, CAMs as Shapley Value-based Explainers), as
    pytorch-grad-cam's ShapleyCAM: w_k = the spatial mean of G_k - 1/2 (H A)_k, with
    H A the Hessian of the score times the activations (a Hessian-vector product).
    Where the score is linear in the layer (global average pooling, then a dense
    logit) H A = 0 and this is Grad-CAM."""
    import tensorflow as tf

    return _weighted_sum(features, tf.reduce_mean(grads - 0.5 * hessian_times_activations, axis=(1, 2)))


def randomcam_map(features, grads):
    """RandomCAM (pytorch-grad-cam's RandomCAM): channels weighted by numbers drawn
    uniformly from [-1, 1] on every call: the floor a real method must beat."""
    import tensorflow as tf

    return _weighted_sum(features, tf.random.uniform((1, tf.shape(features)[-1]), -1.0, 1.0))


KPCA_KERNEL = "sigmoid"  # pytorch-grad-cam's KPCA_CAM default; scikit-learn's gamma None = 1 / channels, coef0 1


def kpca_features(features: np.ndarray):
    """KPCA-CAM (Karmani et al. 2024), as pytorch-grad-cam's KPCA_CAM: scikit-learn's
    KernelPCA (one component, sigmoid kernel, gamma 1 / channels, coef0 1) fitted on
    the activations centred per channel; each position's projection is the map. Its
    sign is the one scikit-learn's svd_flip gives (the reference does not correct it).
    features (h, w, k) float32 -> ((1, h, w), (1, 0)): kernel components have no
    channel weights."""
    from sklearn.decomposition import KernelPCA

    height, width, channels = features.shape
    flat = np.nan_to_num(features.reshape(-1, channels).astype(np.float32))
    centred = flat - flat.mean(axis=0)
    projection = KernelPCA(n_components=1, kernel=KPCA_KERNEL).fit_transform(centred)
    return projection.reshape(1, height, width).astype(np.float32), np.zeros((1, 0), np.float32)


# --- FinerCAM's target: the class against its nearest classes ----------------------

FINER_COMPARED = 3  # pytorch-grad-cam's FinerCAM default comparison_categories [1, 2, 3]
FINER_ALPHA = 1.0


def finer_scores(logits, rows):
    """FinerCAM (Zhang et al. 2025), as pytorch-grad-cam's FinerWeightedTarget: for
    the class c of each row, the three classes whose logits are nearest to y_c, and
    S = sum_j p_j (y_c - alpha y_j) / (sum_j p_j + 1e-9) with p = softmax(logits),
    differentiated through p as well (the reference does not detach it).
    logits (C,), rows (K, C) -> (K,)."""
    import tensorflow as tf

    main = tf.argmax(rows, axis=1, output_type=tf.int32)  # (K,)
    y_c = tf.gather(logits, main)  # (K,)
    distance = tf.abs(logits[None, :] - y_c[:, None])  # (K, C)
    # The class itself is at distance 0: drop it, keep the next three.
    nearest = tf.math.top_k(-distance + tf.one_hot(main, tf.shape(logits)[0]) * -1e30, k=FINER_COMPARED).indices
    probabilities = tf.nn.softmax(logits)
    p = tf.gather(probabilities, nearest)  # (K, 3)
    y_j = tf.gather(logits, nearest)
    return tf.reduce_sum(p * (y_c[:, None] - FINER_ALPHA * y_j), axis=1) / (tf.reduce_sum(p, axis=1) + 1e-9)


# --- perturbation methods: channel weights from scores --------------------------


def scorecam_weights(base_scores: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Score-CAM (Wang et al. 2020): the softmax, over channels, of the target's
    score on the input masked by each channel's map, as pytorch-grad-cam's
    ScoreCAM (logits, not the paper's baseline-subtracted probabilities).
    scores: (K, n) for n channels; returns (K, n)."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def ablationcam_weights(base_scores: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Ablation-CAM (Desai & Ramaswamy 2020): w_k = (y - y_k) / y, y_k the
    target's score with channel k set to zero (the paper's ablation; pytorch-grad-cam
    ablates to a very negative value instead when a layer has negative values)."""
    y = base_scores[:, None]
    return np.divide(y - scores, y, out=np.zeros_like(scores), where=y != 0)


# --- Occlusion: the drop of the target's probability under a sliding patch ------

OCCLUSION_PATCHES_PER_SIDE = 7  # the default window is the input's shorter side / 7 (32 px at 224)


def occlusion_window(height: int, width: int, window: int | None = None, stride: int | None = None):
    """(window, stride) in pixels of the network's input. Defaults sized to the input:
    a window of the shorter side / OCCLUSION_PATCHES_PER_SIDE (an object part at
    224 px) moved by half a window, so each pixel is covered by about four patches."""
    side = min(height, width)
    if window is None:
        window = max(1, round(side / OCCLUSION_PATCHES_PER_SIDE))
    if stride is None:
        stride = max(1, int(window) // 2)
    for name, value in (("window", window), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= side:
            raise ValueError(f"Occlusion's {name} is a whole number of pixels from 1 to {side} (the input's "
                             f"shorter side); got {value!r}.")
    return int(window), int(stride)


def occlusion_starts(size: int, window: int, stride: int) -> list[int]:
    """Where the patch starts along one side: every stride, plus one flush with the
    far edge, so every pixel is covered at least once."""
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def occlusion_grid(height: int, width: int, window: int | None = None, stride: int | None = None) -> tuple:
    """(rows, columns, window, stride): the grid of patch positions Occlusion scores on an
    input of height x width (its map has one value per position, spread over the pixels)."""
    window, stride = occlusion_window(height, width, window, stride)
    return len(occlusion_starts(height, window, stride)), len(occlusion_starts(width, window, stride)), window, stride


def occlusion_positions(height: int, width: int, window: int, stride: int) -> list[tuple[int, int]]:
    """The patches' top-left corners (y, x), row by row."""
    return [(y, x) for y in occlusion_starts(height, window, stride) for x in occlusion_starts(width, window, stride)]


def occlusion_masks(positions, window: int, height: int, width: int) -> np.ndarray:
    """(n, height, width, 1) float32: 1 inside each patch."""
    masks = np.zeros((len(positions), height, width, 1), np.float32)
    for number, (y, x) in enumerate(positions):
        masks[number, y:y + window, x:x + window] = 1.0
    return masks


def occlusion_map(drops: np.ndarray, positions, window: int, height: int, width: int) -> np.ndarray:
    """Occlusion (Zeiler & Fergus 2014) at pixel resolution: each pixel gets the mean
    drop of the target's probability over the patches that covered it (Captum's
    Occlusion does the same). drops: (K, n) for n positions; returns (K, height, width)."""
    total = np.zeros((len(drops), height, width), np.float64)
    count = np.zeros((height, width), np.float64)
    for number, (y, x) in enumerate(positions):
        total[:, y:y + window, x:x + window] += drops[:, number, None, None]
        count[y:y + window, x:x + window] += 1.0
    return (total / np.maximum(count, 1.0)).astype(np.float32)


# --- the registry ---------------------------------------------------------------

_ADEBAYO = ("Adebayo et al. 2018 (Sanity Checks for Saliency Maps, NeurIPS) found the maps nearly unchanged "
            "when the model's weights are randomized")
_SELVARAJU = ("Selvaraju et al. 2017, Grad-CAM: Visual Explanations from Deep Networks via Gradient-based "
              "Localization")

METHODS: dict[str, Method] = {m.name: m for m in (
    Method(name="gradcam", display_name="Grad-CAM", paper=_SELVARAJU, kind="gradient", needs_gradients=True,
           description="Each feature map weighted by its average gradient: the classic, fast and "
           "class-discriminative.", make_map=gradcam_map),
    Method(name="gradcam++", display_name="Grad-CAM++",
           paper="Chattopadhyay et al. 2018, Grad-CAM++: Improved Visual Explanations for Deep Convolutional "
           "Networks", kind="gradient", needs_gradients=True,
           description="Only positive gradients, weighted per position: covers several or large objects better.",
           make_map=gradcam_plus_plus_map),
    Method(name="xgradcam", display_name="XGrad-CAM",
           paper="Fu et al. 2020, Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of CNNs",
           kind="gradient", needs_gradients=True,
           description="Gradients weighted by the activations they act on (the axioms of sensitivity and "
           "conservation).", make_map=xgradcam_map),
    Method(name="hirescam", display_name="HiResCAM",
           paper="Draelos & Carin 2020, Use HiResCAM instead of Grad-CAM for faithful explanations of "
           "convolutional neural networks", kind="gradient", needs_gradients=True,
           description="Gradient times activation at each position, no averaging: faithful for models that end "
           "in global average pooling.", make_map=hirescam_map),
    Method(name="gradcam-elementwise", display_name="Grad-CAM element-wise",
           paper="pytorch-grad-cam's GradCAMElementWise (Gildenblat et al.), after HiResCAM", kind="gradient",
           needs_gradients=True, description="Like HiResCAM, but only the positive products of gradient and "
           "activation count.", make_map=gradcam_elementwise_map),
    Method(name="layercam", display_name="LayerCAM",
           paper="Jiang et al. 2021, LayerCAM: Exploring Hierarchical Class Activation Maps for Localization",
           kind="gradient", needs_gradients=True,
           description="Positive gradients times activations, position by position: the method of choice at "
           "early, high-resolution layers.", make_map=layercam_map),
    Method(name="eigencam", display_name="Eigen-CAM",
           paper="Muhammad & Yeasin 2020, Eigen-CAM: Class Activation Map using Principal Components",
           kind="activation", needs_gradients=False, class_specific=False,
           description="The activations' first principal component: no gradients, and the same map for every "
           "class.", make_map=eigencam_map),
    Method(name="eigengradcam", display_name="Eigen-Grad-CAM",
           paper="pytorch-grad-cam's EigenGradCAM (Gildenblat et al.), after Muhammad & Yeasin 2020",
           kind="gradient", needs_gradients=True,
           description="The first principal component of gradient times activation: Eigen-CAM made "
           "class-specific.", make_map=eigengradcam_map),
    Method(name="scorecam", display_name="Score-CAM",
           paper="Wang et al. 2020, Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural "
           "Networks", kind="perturbation", needs_gradients=False,
           description="Each feature map masks the photo; it counts by how much the masked photo alone scores "
           "the class. No gradients; one forward pass per feature map.",
           weights_from_scores=scorecam_weights, perturbs="input", channel_budget=True, slow=True),
    Method(name="ablationcam", display_name="Ablation-CAM",
           paper="Desai & Ramaswamy 2020, Ablation-CAM: Visual Explanations for Deep Convolutional Network via "
           "Gradient-free Localization", kind="perturbation", needs_gradients=False,
           description="Each feature map counts by how much the score drops when it is switched off. No "
           "gradients; runs the rest of the network once per feature map.",
           weights_from_scores=ablationcam_weights, perturbs="channels", slow=True),
    Method(name="occlusion", display_name="Occlusion",
           paper="Zeiler & Fergus 2014, Visualizing and Understanding Convolutional Networks", kind="perturbation",
           needs_gradients=False, perturbs="patches", slow=True, resolution="pixels",
           description="A patch (blurred out by default) slides over the photo; each place counts by how much "
           "covering it lowers the class's probability. No gradients, no layer; one forward pass per position."),
    Method(name="guided-backprop", display_name="Guided Backpropagation",
           paper="Springenberg et al. 2015, Striving for Simplicity: The All Convolutional Net",
           kind="pixel-gradient", needs_gradients=True, resolution="pixels",
           description="The gradient down to the pixels, passing only positive signals through each ReLU: fine "
           "edges, hardly class-specific.", known_sanity_failure=_ADEBAYO),
    Method(name="guided-gradcam", display_name="Guided Grad-CAM", paper=_SELVARAJU + " (section 3)",
           kind="pixel-gradient", needs_gradients=True, resolution="pixels",
           description="Grad-CAM times Guided Backpropagation: where (Grad-CAM) and which pixels (guided), at "
           "pixel resolution.", make_map=gradcam_map, known_sanity_failure=_ADEBAYO),
    Method(name="fem", display_name="FEM", paper="Fuad et al. 2020, Features Understanding in 3D CNNs for "
           "Actions Recognition in Video", kind="activation", needs_gradients=False, class_specific=False,
           description="Each feature map weighted by the share of its positions that stand out (above mean + 2 "
           "std): no gradients, the same map for every class.", make_map=fem_map),
    Method(name="kpca-cam", display_name="KPCA-CAM",
           paper="Karmani et al. 2024, KPCA-CAM: Visual Explainability of Deep Computer Vision Models using "
           "Kernel PCA", kind="activation", needs_gradients=False, class_specific=False,
           description="Eigen-CAM with a kernel: the first kernel principal component (sigmoid kernel) of the "
           "activations. No gradients, the same map for every class.", from_features=kpca_features),
    Method(name="shapleycam", display_name="ShapleyCAM",
           paper="Cai 2025, CAMs as Shapley Value-based Explainers", kind="gradient", needs_gradients=True,
           description="Grad-CAM corrected by the curvature of the score (a Hessian-vector product): the same as "
           "Grad-CAM where the score is linear in the layer.", make_map=shapleycam_map, second_order=True),
    Method(name="finercam", display_name="Finer-CAM",
           paper="Zhang et al. 2025, Finer-CAM: Spotting the Difference Reveals Finer Details for Visual "
           "Explanation", kind="gradient", needs_gradients=True,
           description="Grad-CAM of the class against its three nearest classes (weighted by their "
           "probabilities): what tells it apart from the look-alikes.", make_map=gradcam_map,
           target_score=finer_scores),
    Method(name="seg-eigencam", display_name="Seg-Eigen-CAM",
           paper="Chung & Ying 2025, Seg-Eigen-CAM: Eigen-Value-Based Visual Explanations for Semantic "
           "Segmentation Models", kind="gradient", needs_gradients=True,
           description="The first principal component of |gradient| times activation, its sign set so the "
           "strongest side is positive: Eigen-CAM made class-specific.", make_map=seg_eigencam_map),
    Method(name="fullgrad", display_name="FullGrad",
           paper="Srinivas & Fleuret 2019, Full-Gradient Representation for Neural Network Visualization",
           kind="full-gradient", needs_gradients=True, resolution="pixels", ignores_layer=True,
           description="The input times its gradient plus every bias times its gradient, each normalised and "
           "summed: all layers at once, so the layer picker does nothing."),
    Method(name="refinecam", display_name="RefineCAM",
           paper="Domeniconi et al. 2026, How to Evaluate and Refine your CAM", kind="combined",
           needs_gradients=True, resolution="pixels", combines="gradcam++", fuses="layers", slow=True,
           description="Grad-CAM++ at the chosen layer times Grad-CAM++ at every later stage: the early layer's "
           "detail, denoised by the deeper layers. One pass per layer."),
    Method(name="sess", display_name="SESS",
           paper="Tursun et al. 2022, SESS: Saliency Enhancing with Scaling and Sliding", kind="combined",
           needs_gradients=True, resolution="pixels", combines="gradcam", fuses="windows", slow=True,
           description="Grad-CAM of windows slid over the photo at twelve scales, each weighted by how sure the "
           "model is of the class in it, then averaged and blurred: robust to size and to several objects. "
           "About a hundred passes."),
    Method(name="randomcam", display_name="RandomCAM", paper="pytorch-grad-cam's RandomCAM (Gildenblat et al.)",
           kind="activation", needs_gradients=False, class_specific=False,
           description="Feature maps weighted by random numbers in [-1, 1], new on every run: the floor any "
           "method must beat.", make_map=randomcam_map, random_weights=True),
    Method(name="attention-rollout", display_name="Attention rollout",
           paper="Abnar & Zuidema 2020, Quantifying Attention Flow in Transformers", kind="attention",
           needs_gradients=False, class_specific=False,
           description="Transformers only: how much attention flows from each patch to the class token, "
           "through every block. The same map for every class.", make_map=rollout_map),
    Method(name="gradient-rollout", display_name="Gradient-weighted rollout",
           paper="Chefer, Gur & Wolf 2021, Generic Attention-model Explainability for Interpreting Bi-Modal and "
           "Encoder-Decoder Transformers", kind="attention", needs_gradients=True,
           description="Transformers only: attention rollout with each head weighted by the class score's "
           "gradient, so the map is class-specific.", make_map=gradient_rollout_map),
)}


def methods_for(model) -> list[str]:
    """The keys of the methods that apply to ``model``: every method, except those
    made from attention (rollout) on a model without attention layers. Pages and
    rankings that run "every method" run these."""
    from .graph import has_attention

    attention = has_attention(model.keras)
    return [key for key, m in METHODS.items() if m.kind != "attention" or attention]


def method(key: str) -> Method:
    """The registry entry for ``key``, or a one-sentence ValueError."""
    if key not in METHODS:
        raise ValueError(f'Unknown method "{key}"; choose one of: {", ".join(METHODS)}.')
    return METHODS[key]
