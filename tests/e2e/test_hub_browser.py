"""Explore with a KerasHub ViT in a real browser (issue 28, item 2): its .keras file, built with
KerasHub's own classes, uploaded in the sidebar; the Layer box offers its transformer blocks
by name, one is picked, and the overlay follows. At 1400 px and on a 390 px phone."""

from pathlib import Path

import pytest

from e2e.browser import OVERLAY, browser_page, exceptions_shown, open_explorer, timed, wait_until_idle
from e2e.server import streamlit_server
from tests.e2e.test_browser import SCREENSHOTS, pick_in_box, require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

keras_hub = pytest.importorskip("keras_hub")

DEFAULT_BLOCK = "transformer_block_2/ln_1"
PICKED_BLOCK = "transformer_block_1/ln_1"
SIDEBAR = "[data-testid='stSidebar']"


@pytest.fixture(scope="module")
def vit_file(tmp_path_factory) -> Path:
    """A small KerasHub ViT classifier (32 px, 8x8 patches of 4 px, 2 blocks) with its own
    preprocessor, saved as a person saves one."""
    import keras

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=4, num_layers=2, num_heads=2,
                                            hidden_dim=16, mlp_dim=32, name="vit_backbone")
    converter = keras_hub.layers.ViTImageConverter(image_size=(32, 32), scale=1 / 255)
    classifier = keras_hub.models.ViTImageClassifier(
        backbone=backbone, num_classes=3,
        preprocessor=keras_hub.models.ViTImageClassifierPreprocessor(image_converter=converter))
    path = tmp_path_factory.mktemp("hub") / "my_vit.keras"
    classifier.save(path)
    return path


def layer_shown(page) -> str:
    return page.get_by_role("combobox", name="Layer").input_value()


def block_name_fits(page) -> bool:
    """The block's name ("transformer_block_1/ln_1") fits the Layer box as drawn, in its own font:
    the rest of the label (the grid, the container) may be cut, the name may not."""
    return page.get_by_role("combobox", name="Layer").evaluate("""(value, name) => {
        const context = document.createElement("canvas").getContext("2d");
        context.font = getComputedStyle(value).font;
        return context.measureText(name).width <= value.getBoundingClientRect().width;
    }""", PICKED_BLOCK)


def explore_with_the_vit(page, url: str, vit_file: Path, phone: bool, shot: str) -> None:
    open_explorer(page, url)
    if phone:
        page.locator("[data-testid='stExpandSidebarButton']").first.click()
    pick_in_box(page, "Model", "Upload a Keras model")
    uploader = page.locator(f"{SIDEBAR} [data-testid='stFileUploader'] input[type='file']").first
    uploader.wait_for(state="attached", timeout=60_000)
    # The file goes to the KerasHub worker (booted now, on a busy machine: a minute or more), then explains.
    timed(page, lambda: uploader.set_input_files(str(vit_file)), timeout=400)
    wait_until_idle(page, timeout=120)
    assert layer_shown(page).startswith(DEFAULT_BLOCK + "  (8x8 tokens + 1 class token, 16)")
    timed(page, lambda: pick_in_box(page, "Layer", PICKED_BLOCK), timeout=200)
    wait_until_idle(page, timeout=120)
    assert layer_shown(page).startswith(PICKED_BLOCK)
    assert block_name_fits(page)
    assert page.locator(OVERLAY).count() == 1
    assert exceptions_shown(page) == [] and page.locator("[data-testid='stAlert']", has_text="cannot").count() == 0
    # The cat's class under Lite0 is no link's: the new model's top class, without a "The link asks ..." warning.
    assert page.locator("[data-testid='stAlert']", has_text="The link").count() == 0
    page.screenshot(path=str(SCREENSHOTS / f"{shot}.png"))
    if phone:  # the result under the sidebar
        page.locator("[data-testid='stSidebarCollapseButton'] button").first.click()
        page.locator(OVERLAY).scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / f"{shot}-result.png"))


def test_explore_with_a_keras_hub_vit_at_1400_and_390_px(vit_file):
    require_chromium()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url:
        with browser_page() as (page, console):
            explore_with_the_vit(page, url, vit_file, phone=False, shot="explore-keras-hub-vit")
            assert [text for kind, text in console if kind in ("error", "pageerror")] == []
        with browser_page(390, 844, touch=True) as (page, _):
            explore_with_the_vit(page, url, vit_file, phone=True, shot="phone-explore-keras-hub-vit")
