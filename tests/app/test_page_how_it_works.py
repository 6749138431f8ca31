"""The "How Grad-CAM works" page through AppTest: its steps show the real tensors,
and its last step is exactly the map gradcam.explain gives."""

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.pages import page_app

import gradcam
from gradcam.intake import sha256
from dashboard.runtime.call_counts import engine_calls
from dashboard.runtime import model_cache
from dashboard.runtime import explanation_cache

PAGE = "how_it_works"
STEPS = 8


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def model():
    # The very model object the page uses (a process-wide Streamlit resource), so the
    # engine's compiled functions are shared and nothing is traced twice.
    return model_cache.builtin_model("EfficientNet-Lite0")


def photo(at: AppTest):
    """The photo the page explained, at the size it explained it."""
    return explanation_cache.display_image(at.session_state["image_hash"], at.session_state["image_data"])


def steps_shown(at: AppTest) -> list[str]:
    return [header.value for header in at.subheader]


def shown_weights(at: AppTest) -> dict[int, float]:
    table = at.dataframe[0].value
    return dict(zip(table["channel"].astype(int), table["weight α_k"]))


@pytest.fixture(scope="module")
def default_lesson():
    """One session on the default sample, default choices (read only, or walked in order)."""
    return run(page_app(PAGE, default_timeout=180))


def test_the_final_map_is_the_engines_map_for_the_default_photo(default_lesson):
    at = default_lesson
    assert at.session_state["image_name"] == "cat.jpg"
    expected = gradcam.explain(model(), photo(at))  # top-1, default layer, Grad-CAM
    assert at.selectbox(key="lesson_target").value == expected.target
    final = at.session_state["lesson_final_map"]
    assert final.shape == expected.heatmap.shape and np.allclose(final, expected.heatmap, atol=1e-6)


def test_previous_and_next_walk_the_steps_without_running_the_model_again(default_lesson):
    at = default_lesson
    assert steps_shown(at) == ["Step 1 of 8: The input"]
    assert any(m.value.startswith("**Step 1 of 8**") for m in at.markdown)
    assert at.button(key="lesson_previous").disabled and not at.button(key="lesson_next").disabled
    calls = engine_calls["lesson"]
    at.button(key="lesson_next").click()
    run(at)
    at.button(key="lesson_next").click()
    run(at)
    assert at.session_state["lesson_step"] == 3 and steps_shown(at) == ["Step 3 of 8: Their gradients"]
    assert any(m.value.startswith("**Step 3 of 8**") for m in at.markdown)
    assert len(at.image) == 16 + 1  # the 16 channels' gradients and the colour bar
    at.button(key="lesson_previous").click()
    run(at)
    assert steps_shown(at) == ["Step 2 of 8: The feature maps"]
    assert sum(c.startswith("channel ") for image in at.image for c in image.captions) == 16
    for _ in range(STEPS - 3):
        at.button(key="lesson_next").click()
        run(at)
    assert steps_shown(at) == ["Step 7 of 8: Onto the photo"]
    assert any(c.startswith("Grad-CAM overlay, opacity 0.40") for image in at.image for c in image.captions)
    at.button(key="lesson_next").click()
    run(at)
    assert steps_shown(at) == ["Step 8 of 8: What if? Cover it"] and at.button(key="lesson_next").disabled
    assert engine_calls["lesson"] == calls  # every step came from the cached pass


def test_show_all_steps_renders_every_step_with_its_formula(default_lesson):
    at = default_lesson
    at.toggle(key="lesson_all").set_value(True)
    run(at)
    assert steps_shown(at) == [f"Step {n} of 8: {title}" for n, title in enumerate([
        "The input", "The feature maps", "Their gradients", "One weight per feature map", "The weighted sum",
        "Keep what speaks for the class", "Onto the photo", "What if? Cover it"], 1)]
    assert len(at.latex) == STEPS
    assert len(at.dataframe) == 1 and len(at.get("vega_lite_chart")) == 1
    # The channel weights shown are the engine's, and the table names the channels drawn in steps 2-3.
    expected = gradcam.explain(model(), photo(at))
    weights = shown_weights(at)
    assert len(weights) == 16
    for channel, weight in weights.items():
        assert weight == pytest.approx(float(expected.channel_weights[channel]), rel=1e-5, abs=1e-9)
    drawn = {int(c.split()[1].rstrip(",")) for image in at.image for c in image.captions if c.startswith("channel ")}
    assert drawn == set(weights)
    at.toggle(key="lesson_all").set_value(False)
    run(at)
    assert len(steps_shown(at)) == 1


def test_another_layer_class_and_method_chosen_on_explore():
    at = page_app(PAGE, default_timeout=180)
    # As Explore leaves them: a layer with the model it was chosen for, a class with its photo and model.
    cat = sha256((Path(__file__).resolve().parents[2] / "samples" / "cat.jpg").read_bytes())
    at.session_state["chosen"] = {"layer": "block10_add", "layer_for": "EfficientNet-Lite0", "target": 967,
                                  "target_for": (cat, "EfficientNet-Lite0"), "method": "gradcam++"}
    at.session_state["lesson_step"] = 4
    run(at)
    assert at.selectbox(key="lesson_target").value == 967  # espresso, as chosen on Explore
    assert "block10\\_add" in at.caption[0].value and "Grad-CAM++" in at.caption[0].value
    expected = gradcam.explain(model(), photo(at), target=967, layer="block10_add", method="gradcam++")
    assert np.allclose(at.session_state["lesson_final_map"], expected.heatmap, atol=1e-6)
    for channel, weight in shown_weights(at).items():
        assert weight == pytest.approx(float(expected.channel_weights[channel]), rel=1e-5, abs=1e-9)
    assert "a^{kc}_{ij}" in at.latex[0].value  # step 4 gives Grad-CAM++'s own formula

    # Another class from the page's own box: the map follows it.
    at.selectbox(key="lesson_target").set_value(285)
    run(at)
    expected = gradcam.explain(model(), photo(at), target=285, layer="block10_add", method="gradcam++")
    assert np.allclose(at.session_state["lesson_final_map"], expected.heatmap, atol=1e-6)
    assert at.session_state["lesson_step"] == 4  # the lesson stays where it was


def test_a_method_the_lesson_does_not_teach_is_named_and_shown_beside_the_lessons_map():
    """Eigen-CAM chosen on Explore: the steps compute Grad-CAM and say so; the last step
    shows Grad-CAM's map under its own name next to the Eigen-CAM map Explore shows."""
    at = page_app(PAGE, default_timeout=180)
    at.session_state["chosen"] = {"method": "eigencam"}
    at.session_state["lesson_step"] = 7  # Onto the photo
    run(at)
    assert any(box.value.startswith("These steps compute Grad-CAM's map: Eigen-CAM") for box in at.info)
    captions = [image.captions[0] for image in at.image]
    assert captions[0].startswith("Grad-CAM overlay (these steps), opacity ")
    assert captions[1] == "Eigen-CAM overlay (what Explore shows)"
    assert not any("Eigen-CAM overlay, opacity" in caption for caption in captions)
    assert not any("This is the" in m.value and "map the Explore page shows" in m.value for m in at.markdown)
    target = at.selectbox(key="lesson_target").value
    grad = gradcam.explain(model(), photo(at), target=target, method="gradcam")
    eigen = gradcam.explain(model(), photo(at), target=target, method="eigencam")
    assert np.allclose(at.session_state["lesson_final_map"], grad.heatmap, atol=1e-6)
    assert not np.allclose(grad.heatmap, eigen.heatmap, atol=0.05)  # two different maps, both shown
