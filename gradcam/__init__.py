"""Grad-CAM Explorer's engine: explain why an image classifier chose a class.

    import gradcam
    model = gradcam.load_model("EfficientNet-Lite0")      # offline, real ImageNet weights
    image = gradcam.load_image("cat.jpg")                 # trusted files, in this process
    image = gradcam.load_image_safely(upload_bytes)         # untrusted bytes, in a sandboxed worker
    explanation = gradcam.explain(model, image)             # top-1 class, last conv layer
    gradcam.overlay(image, explanation.heatmap).save("cat-gradcam.png")

The layers, bottom to top (each imports only those below it):

- ``intake``: untrusted bytes in: images, archives, model files, their budgets, the sandbox;
- ``engine``: the ``Model`` type, the graph runner, the compiled passes, the methods;
- ``zoo``: where models come from: the offline EfficientNet-Lite, Keras applications, own files;
- ``trust``: is one map faithful, does it pass the sanity check;
- ``concepts``: Deep Feature Factorization, the parts the model sees (over ``engine``);
- ``audit``: the dataset audit (``gradcam.audit`` is its function; its modules are
  reached with ``from gradcam.audit.spray import spray``);
- ``report``: HTML and PDF reports, many photos' records and CSV;
- ``scale``: Ray Data and Ray Serve.

This package never imports Streamlit; the dashboard is a thin layer over it.
"""

from .concepts import DEFAULT_CONCEPTS, Concept, Concepts, ConceptStrip, concept_strips, find_concepts, shared_concepts
from .engine.batched import explain_batch
from .engine.cost import check_explanation
from .engine.cam import (
    ExplanationStopped, Explanation, Prediction, explain, explain_contrast, explain_counterfactual, explain_layers,
    explain_many, planned_passes, predict,
)
from .engine.graph import TargetLayer, default_layer, stage_layers, target_layers
from .engine.methods import METHODS, methods_for
from .engine.model import Model, small_photo_note
from .engine.overlay import COLORMAPS, overlay
from .engine.live import LiveExplainer, LiveResult, LiveSettings, LiveStats
from .engine.video import MapSmoother, VideoExplanation, explain_video
from .engine.what_if import WhatIf, what_if
from .errors import ExplanationTooCostly, InvalidImageError, InvalidVideoError, ModelLoadError
from .intake.images import load_image
from .intake.sandbox import load_image_safely, load_video_safely, sandbox_session
from .intake.video import Video
from .audit import Audit, AuditClass, AuditCluster, AuditPhoto, audit
from .trust.faithfulness import Curve, Faithfulness, MethodScore, faithfulness, rank_methods
from .trust.metrics import METRICS, Metric
from .trust.sanity import SanityCheck, SanityStep, sanity_check
from .zoo.catalog import DEFAULT_MODEL, available_models, load_model

__all__ = [
    "Audit",
    "AuditClass",
    "AuditCluster",
    "AuditPhoto",
    "COLORMAPS",
    "Concept",
    "Concepts",
    "ConceptStrip",
    "DEFAULT_CONCEPTS",
    "Curve",
    "DEFAULT_MODEL",
    "METHODS",
    "METRICS",
    "Metric",
    "Explanation",
    "Faithfulness",
    "MethodScore",
    "ExplanationStopped",
    "ExplanationTooCostly",
    "InvalidImageError",
    "InvalidVideoError",
    "LiveExplainer",
    "LiveResult",
    "LiveSettings",
    "LiveStats",
    "MapSmoother",
    "Model",
    "ModelLoadError",
    "Prediction",
    "SanityCheck",
    "SanityStep",
    "TargetLayer",
    "Video",
    "VideoExplanation",
    "WhatIf",
    "audit",
    "available_models",
    "check_explanation",
    "concept_strips",
    "default_layer",
    "explain",
    "explain_batch",
    "explain_contrast",
    "explain_counterfactual",
    "explain_layers",
    "explain_many",
    "explain_video",
    "faithfulness",
    "find_concepts",
    "load_image",
    "load_image_safely",
    "load_video_safely",
    "sandbox_session",
    "load_model",
    "methods_for",
    "overlay",
    "planned_passes",
    "predict",
    "rank_methods",
    "sanity_check",
    "shared_concepts",
    "small_photo_note",
    "stage_layers",
    "target_layers",
    "what_if",
]
