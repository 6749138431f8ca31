"""A report on a transformer names the patch grid behind the map's cells (issue 20)."""

import numpy as np
from PIL import Image

import gradcam
from gradcam import report
from gradcam.zoo.vit import LABELS, build_vit
from helpers import own_model


def test_the_report_names_the_token_grid():
    import keras

    keras.utils.set_random_seed(3)
    vit = own_model(build_vit(), LABELS)  # the structure is what matters here, not the weights
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    explanation = gradcam.explain(vit, photo, method="hirescam")
    item = report.ReportItem.from_explanation(photo, "tag.png", "0" * 64, explanation)
    item = type(item)(**{**item.__dict__, "token_grid": report.token_grid_of(vit, explanation.layer)})
    html = report.report_html([item], model_name="tiny ViT")
    assert "<td>4x4 tokens + 1 class token of layer" in html and "extra tokens left out" in html
    assert report.token_grid_of(vit, "patch_embed") is None  # a feature map has cells, not tokens
