"""Grad-CAM Explorer's engine: explain why an image classifier chose a class.

    import gradcam
    model = gradcam.load_model("EfficientNet-Lite0")      # offline, real ImageNet weights
    image = gradcam.load_image("cat.jpg")                 # trusted files, in this process
    image = gradcam.load_image_safely(upload_bytes)         # untrusted bytes, in a sandboxed worker
    explanation = gradcam.explain(model, image)             # top-1 class, last conv layer
    gradcam.overlay(image, explanation.heatmap).save("cat-gradcam.png")

This package never imports Streamlit; the dashboard is a thin layer over it.
"""

from .cam import (
    ExplanationStopped,
    METHODS, Explanation, Prediction, explain, explain_contrast, explain_counterfactual, explain_layers,
    explain_many, predict,
)
from .batched import explain_batch
from .errors import InvalidImageError, ModelLoadError
from .faithfulness import Curve, Faithfulness, MethodScore, faithfulness, rank_methods
from .images import load_image
from .layers import TargetLayer, default_layer, stage_layers, target_layers
from .models import DEFAULT_MODEL, Model, available_models, load_model
from .overlay import COLORMAPS, overlay
from .sanity import SanityCheck, SanityStep, sanity_check
from .sandbox import load_image_safely

__all__ = [
    "COLORMAPS",
    "Curve",
    "DEFAULT_MODEL",
    "METHODS",
    "Explanation",
    "Faithfulness",
    "MethodScore",
    "ExplanationStopped",
    "InvalidImageError",
    "Model",
    "ModelLoadError",
    "Prediction",
    "SanityCheck",
    "SanityStep",
    "TargetLayer",
    "available_models",
    "default_layer",
    "explain",
    "explain_batch",
    "explain_contrast",
    "explain_counterfactual",
    "explain_layers",
    "explain_many",
    "faithfulness",
    "load_image",
    "load_image_safely",
    "load_model",
    "overlay",
    "predict",
    "rank_methods",
    "sanity_check",
    "stage_layers",
    "target_layers",
]
