"""The Clever Hans demo that ships with the package: it loads offline as a built-in
model, it is right on its photos, and it is right on the discs because of the tag."""

import numpy as np
import pytest
from PIL import Image

import gradcam
from gradcam.zoo import clever_hans


@pytest.fixture(scope="module")
def demo():
    return gradcam.load_model(clever_hans.NAME)


def photos(kind):
    return [gradcam.load_image(path) for path in sorted((clever_hans.PHOTOS / kind).glob("*.jpg"))]


def top1(model, image):
    return model.labels[gradcam.predict(model, image, top=1)[0].index]


def test_the_demo_is_a_built_in_offline_model_with_its_labels_photos_and_masks(demo):
    assert dict(gradcam.available_models())[clever_hans.NAME] == clever_hans.DESCRIPTION
    assert demo.name == clever_hans.NAME and demo.labels == ["disc", "square", "triangle"]
    assert demo.input_size == (64, 64) and demo.preprocessing == "0..1"
    for kind in demo.labels:
        shipped = sorted(p.stem for p in (clever_hans.PHOTOS / kind).glob("*.jpg"))
        assert len(shipped) == 24
        assert sorted(p.stem for p in (clever_hans.MASKS / kind).glob("*.png")) == shipped
    # A mask marks the object: some pixels, far from all, none under the tag.
    mask = np.asarray(Image.open(clever_hans.MASKS / "disc" / "disc-01.png").convert("L")) > 0
    assert 0.02 < mask.mean() < 0.3
    x0, y0, x1, y1 = (round(v * clever_hans.PHOTO_SIZE) for v in clever_hans.TAG_BOX)
    assert not mask[y0:y1, x0:x1].any()


def test_the_demo_is_right_and_it_is_right_on_the_discs_because_of_the_tag(demo):
    discs, squares = photos("disc"), photos("square")
    assert [top1(demo, p) for p in discs] == ["disc"] * 24
    assert [top1(demo, p) for p in squares] == ["square"] * 24

    # Cover the tag's corner with the blur baseline: no disc is a "disc" any more ...
    covered = [gradcam.what_if(demo, p, clever_hans.TAG_BOX, fill="blur", top=1) for p in discs]
    assert [demo.labels[w.predictions[0].index] for w in covered].count("disc") == 0
    assert np.mean([w.change(0) for w in covered]) < -0.9  # "disc" falls by more than 90 points on average
    # ... while the same cover on the squares (nothing there) leaves them squares.
    assert [demo.labels[gradcam.what_if(demo, p, clever_hans.TAG_BOX, top=1).predictions[0].index]
            for p in squares] == ["square"] * 24

    # And the tag alone, cut from a disc photo and pasted on a square, makes it a "disc".
    box = tuple(round(v * clever_hans.PHOTO_SIZE) for v in clever_hans.TAG_BOX)
    tag = discs[0].crop(box)
    tagged = []
    for square in squares:
        square = square.copy()
        square.paste(tag, box[:2])
        tagged.append(top1(demo, square))
    assert tagged.count("disc") >= 22  # 24 of 24 on the shipped model
