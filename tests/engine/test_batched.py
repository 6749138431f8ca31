"""The batched engine: per photo, exactly what explain_many gives, from few compiled functions."""

import numpy as np
import pytest

import gradcam
from gradcam.engine.batched import BUCKETS, chunk_sizes
from helpers import photo


def _same(batched, alone):
    """Maps equal to 1e-5 (heatmaps in [0, 1]; raw maps relative to their peak)."""
    assert [e.target for e in batched] == [e.target for e in alone]
    for b, a in zip(batched, alone):
        assert b.label == a.label and b.layer == a.layer and b.method == a.method
        assert np.abs(b.heatmap - a.heatmap).max() <= 1e-5
        assert np.abs(b.raw - a.raw).max() <= 1e-5 * max(float(a.raw.max()), 1.0)
        assert b.no_positive_evidence == a.no_positive_evidence
        assert abs(b.probability - a.probability) <= 1e-5
        assert [p.index for p in b.predictions] == [p.index for p in a.predictions]


@pytest.fixture(scope="module")
def photos():
    # Real photos of different sizes and classes, plus flipped ones: nine, so the
    # batch is padded (9 -> 16) and the blank padding must not leak into any map.
    base = [photo(n) for n in ("chelsea", "coffee", "rocket", "astronaut")]
    flipped = [p.transpose(0) for p in base]
    return base + flipped + [base[0].crop((40, 20, 300, 280))]


def test_each_photo_gets_what_explain_many_gives(lite0, photos):
    batched = gradcam.explain_batch(lite0, photos, top=2)
    assert len(batched) == len(photos)
    for image, explanations in zip(photos, batched):
        _same(explanations, gradcam.explain_many(lite0, image, top=2))
    # A person's check: the cat is a cat, the espresso an espresso, in the batch too.
    assert batched[0][0].label in ("Egyptian cat", "tabby", "tiger cat")
    assert batched[1][0].label == "espresso"


def test_targets_for_all_or_per_photo_and_gradcam_plus_plus(lite0, photos):
    shared = gradcam.explain_batch(lite0, photos[:3], targets=["espresso", 285], method="gradcam++",
                                   layer="block10_add")
    for image, explanations in zip(photos[:3], shared):
        _same(explanations, gradcam.explain_many(lite0, image, targets=[967, 285], method="gradcam++",
                                                 layer="block10_add"))
    # Different numbers of targets per photo: shorter lists are padded inside, never shown.
    own = gradcam.explain_batch(lite0, photos[:3], targets=[[285], [967, 504, 1], ["space shuttle"]])
    assert [[e.target for e in es] for es in own] == [[285], [967, 504, 1], [812]]
    for image, explanations, targets in zip(photos[:3], own, [[285], [967, 504, 1], [812]]):
        _same(explanations, gradcam.explain_many(lite0, image, targets=targets))


def test_bucket_sizes():
    assert chunk_sizes(0) == []
    assert chunk_sizes(1) == [(1, 1)]
    assert chunk_sizes(9) == [(9, 16)]
    assert chunk_sizes(70) == [(32, 32), (32, 32), (6, 8)]
    assert all(bucket in BUCKETS for _, bucket in chunk_sizes(1000))


def test_new_photos_and_batch_sizes_never_retrace(lite0, photos):
    def traced():
        return {key: f.experimental_get_tracing_count() for key, f in lite0._compiled.items() if key[0] == "batch"}

    for size in (1, 3, 8, 9):  # buckets 1, 4, 8 and 16
        gradcam.explain_batch(lite0, photos[:size])
    before = traced()
    assert all(count == 1 for count in before.values())
    for size in (2, 4, 5, 7, 1, 6, 9):  # other sizes fall in the same buckets
        gradcam.explain_batch(lite0, photos[-size:])
    assert traced() == before


def test_bad_requests_are_one_sentence(lite0, photos):
    with pytest.raises(ValueError, match="one per photo"):
        gradcam.explain_batch(lite0, photos[:3], targets=[[1], [2]])
    with pytest.raises(ValueError, match="Unknown method"):
        gradcam.explain_batch(lite0, photos[:1], method="nope")
    with pytest.raises(gradcam.InvalidImageError):
        gradcam.explain_batch(lite0, [photos[0], b"not an image"])
    assert gradcam.explain_batch(lite0, []) == []


@pytest.mark.parametrize("method, options", [
    ("hirescam", {}), ("eigencam", {}),  # batched: an element-wise method, an activation-only one
    ("scorecam", {"max_channels": 8}),  # photo by photo, the same answers
])
def test_other_methods_give_explain_manys_maps(lite0, photos, method, options):
    layer = "block10_add"  # an earlier layer, where the element-wise methods differ from Grad-CAM
    batched = gradcam.explain_batch(lite0, photos[:3], targets=[[285, 967]] * 3, layer=layer, method=method,
                                    **options)
    for image, explanations in zip(photos[:3], batched):
        _same(explanations, gradcam.explain_many(lite0, image, targets=[285, 967], layer=layer, method=method,
                                                 **options))
