"""Deep Feature Factorization: a planted two-object photo gives two concepts, each on
its object and each voting for its object's class; across several photos the shared
concept comes first; the factorisation is pytorch-grad-cam's dff."""

import numpy as np
import pytest
from PIL import Image

import gradcam
from gradcam.concepts import factorize, find_concepts, shared_concepts

CAT_CLASSES = {"Egyptian cat", "tabby, tabby cat", "tiger cat"}
COFFEE_CLASSES = {"espresso", "coffeepot", "cup", "coffee mug", "teapot"}


def two_objects(cat, coffee, cat_at, coffee_at):
    """A white 448 px square with the cat photo in one quadrant and the espresso in another."""
    canvas = Image.new("RGB", (448, 448), "white")
    canvas.paste(cat.resize((224, 224)), cat_at)
    canvas.paste(coffee.resize((224, 224)), coffee_at)
    return canvas


def share_in(heat, corner):
    x, y = corner
    return float(heat[y:y + 224, x:x + 224].sum() / heat.sum())


@pytest.mark.parametrize("cat_at, coffee_at", [((0, 0), (224, 224)), ((0, 224), (224, 0))])
def test_two_planted_objects_give_two_concepts_each_on_its_object(lite0, cat, coffee, cat_at, coffee_at):
    photo = two_objects(cat, coffee, cat_at, coffee_at)
    found = find_concepts(lite0, photo, n=2, top_classes=5)
    assert found.layer == "top_activation" and len(found.concepts) == 2
    heats = [c.heatmap(0, photo.size) for c in found.concepts]
    on_cat = max(range(2), key=lambda k: share_in(heats[k], cat_at))
    on_coffee = 1 - on_cat
    assert share_in(heats[on_cat], cat_at) > 0.75
    assert share_in(heats[on_coffee], coffee_at) > 0.75
    # Each concept's direction, through the classifier, votes for its own object.
    assert found.concepts[on_cat].supports[0][1] in CAT_CLASSES
    assert {label for _, label, _ in found.concepts[on_coffee].supports} & COFFEE_CLASSES
    # The picture tints each object in its own concept's colour.
    picture = np.asarray(found.picture(photo, alpha=1.0), np.float64)
    for k, corner in ((on_cat, cat_at), (on_coffee, coffee_at)):
        x, y = corner
        middle = picture[y + 80:y + 144, x + 80:x + 144].reshape(-1, 3).mean(axis=0)
        others = [np.abs(middle - c.colour).sum() for c in found.concepts]
        assert int(np.argmin(others)) == k


def test_the_factorisation_is_pytorch_grad_cams_dff():
    """W H approximates the activations shifted per channel to start at zero, W gets the
    shift back, H is the maps; the same seed gives the same answer."""
    rng = np.random.default_rng(0)
    parts = rng.uniform(0, 1, (2, 6))  # two planted channel patterns
    where = np.zeros((2, 4, 4))
    where[0, :, :2], where[1, :, 2:] = 1.0, 1.0
    activations = (np.einsum("kc,khw->hwc", parts, where) - 0.3)[None]  # (1, 4, 4, 6), negative values too
    directions, maps = factorize(activations, 2)
    shift = activations.reshape(-1, 6).min(axis=0)
    rebuilt = np.einsum("ck,pkhw->phwc", directions - shift[:, None], maps)
    assert np.allclose(rebuilt, activations - shift, atol=0.02)
    again = factorize(activations, 2)
    assert np.array_equal(again[0], directions) and np.array_equal(again[1], maps)
    left = [maps[0, k, :, :2].sum() / maps[0, k].sum() for k in range(2)]
    assert sorted(left) == pytest.approx([0.0, 1.0], abs=0.02)  # each concept on one planted half


def test_across_photos_the_concept_they_share_comes_first(lite0, cat, coffee):
    side = cat.resize((224, 224))
    photos = [side, side.transpose(Image.FLIP_LEFT_RIGHT), cat.crop((50, 0, 400, 300)), coffee]
    concepts = shared_concepts(lite0, photos, n=2)
    first = concepts[0]
    assert first.present_in() >= 3 and len(first.shares) == 4
    assert first.supports[0][1] in CAT_CLASSES
    assert first.shares[3] < 0.5  # the espresso photo is mostly the other concept


@pytest.mark.parametrize("kwargs, sentence", [
    (dict(n=0), "The number of concepts is a whole number from 1 to 12; got 0."),
    (dict(n=True), "The number of concepts is a whole number from 1 to 12; got True."),
    (dict(n=3, layer="block10_add"), None),
])
def test_bad_requests_get_one_sentence(lite0, cat, kwargs, sentence):
    if sentence is None:  # a valid request at an early layer still works
        assert len(find_concepts(lite0, cat, **kwargs).concepts) == 3
        return
    with pytest.raises(ValueError) as raised:
        find_concepts(lite0, cat, **kwargs)
    assert str(raised.value) == sentence
    with pytest.raises(ValueError, match="at least one photo"):
        find_concepts(lite0, [], n=2)


def test_one_concept_can_be_drawn_alone_in_its_named_colour(lite0, cat, coffee):
    photo = two_objects(cat, coffee, (0, 0), (224, 224))
    found = find_concepts(lite0, photo, n=2)
    assert [c.colour_name for c in found.concepts] == ["blue", "orange"]
    pixels = np.asarray(photo, np.float64)
    orange = np.asarray(found.picture(photo, alpha=1.0, only=1), np.float64) - pixels
    blue = np.asarray(found.picture(photo, alpha=1.0, only=0), np.float64) - pixels
    # Tinted orange alone, the photo gets redder and less blue; tinted blue alone, the opposite.
    assert orange[..., 0].mean() > 5 and orange[..., 2].mean() < -5
    assert blue[..., 0].mean() < -5 and blue[..., 2].mean() > 5


# --- the concepts' votes: the classifier applied to each direction, no second pass ------------


def substituted(model, layer_name, photo, directions):
    """Each direction at every position of the layer, the rest of the network run from
    there: what a concept's direction feeds, whatever the network after the layer is."""
    from gradcam.engine.graph import resolve_layer
    from gradcam.engine.passes import substituted_logits_pass

    target = resolve_layer(model, layer_name)
    tiled = np.broadcast_to(directions[:, None, None, :], (len(directions), *target.shape)).astype(np.float32)
    return np.asarray(substituted_logits_pass(model, target)(model.prepare(photo), tiled), np.float64)


def test_at_the_last_layer_the_votes_are_the_classifier_applied_to_each_direction(lite0, cat):
    """pytorch-grad-cam's DFF passes the concept embeddings through the classifier: at
    Lite0's last layer that is the dense layer's kernel and bias, written out here."""
    from gradcam.engine.graph import pooled_head, resolve_layer
    from gradcam.engine.passes import direction_logits

    chain = pooled_head(lite0.keras, "top_activation")
    assert [type(layer).__name__ for layer in chain][0] == "GlobalAveragePooling2D"
    assert chain[-1].name == "predictions"
    found = find_concepts(lite0, cat, n=3, top_classes=3)
    directions = np.stack([c.direction for c in found.concepts]).astype(np.float64)
    kernel, bias = (w.astype(np.float64) for w in lite0.keras.get_layer("predictions").get_weights())
    by_hand = directions @ kernel + bias  # the logits; the model's softmax comes after
    got = direction_logits(lite0, resolve_layer(lite0, "top_activation"), lite0.prepare(cat), directions)
    assert np.allclose(got, by_hand, rtol=1e-4, atol=1e-4)
    # The same as running the rest of the network on the direction placed at every position.
    assert np.allclose(got, substituted(lite0, "top_activation", cat, directions), rtol=1e-4, atol=1e-4)
    for concept, logits in zip(found.concepts, by_hand):
        probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert [k for k, _, _ in concept.supports] == list(np.argsort(-probabilities)[:3])
        assert concept.supports[0][2] == pytest.approx(probabilities.max(), rel=1e-4)


def test_a_nested_base_under_a_head_of_its_own_is_a_pooled_classifier_too(lite0, cat):
    from gradcam.engine.graph import pooled_head, resolve_layer
    from gradcam.engine.passes import direction_logits
    from helpers import nested_lite0

    nested, _ = nested_lite0(lite0)
    assert pooled_head(nested.keras, "pretrained/top_activation") is not None
    directions = np.abs(np.random.default_rng(2).normal(0, 1, (4, 1280))).astype(np.float32)
    got = direction_logits(nested, resolve_layer(nested, "pretrained/top_activation"), nested.prepare(cat), directions)
    assert got.shape == (4, 3)
    assert np.allclose(got, substituted(nested, "pretrained/top_activation", cat, directions), rtol=1e-4, atol=1e-4)


def test_where_more_network_follows_the_rest_of_it_runs(lite0, cat):
    """An earlier layer, a flattening head and a head joined by a second branch are not a
    pooled classifier: the votes come from running the network on from the layer."""
    import keras

    from gradcam.engine.graph import pooled_head
    from helpers import own_model

    assert pooled_head(lite0.keras, "block10_add") is None
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inputs)
    flat = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(features)))
    assert pooled_head(flat, "features") is None
    side = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(3, 3, name="side")(inputs))
    joined = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(features), side])
    branched = keras.Model(inputs, keras.layers.Dense(2)(joined))
    assert pooled_head(branched, "features") is None
    # Concepts still come out there, voting through the substituted pass.
    wrapped = own_model(branched, ["a", "b"])
    photo = Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    found = find_concepts(wrapped, photo, n=2, layer="features", top_classes=2)
    directions = np.stack([c.direction for c in found.concepts]).astype(np.float64)
    logits = substituted(wrapped, "features", photo, directions)
    for concept, row in zip(found.concepts, logits):
        assert concept.supports[0][0] == int(np.argmax(row))


def test_concept_strips_show_each_shared_concept_on_the_photos_it_is_strongest_in(lite0, cat, coffee):
    from gradcam.concepts import concept_strips

    side = cat.resize((224, 224))
    photos = [coffee, side, side.transpose(Image.FLIP_LEFT_RIGHT), cat.crop((50, 0, 400, 300))]
    strips = concept_strips(lite0, photos, n=2, per_concept=3)
    assert len(strips) == 2
    on_cat = next(s for s in strips if s.concept.supports[0][1] in CAT_CLASSES)
    on_cup = next(s for s in strips if s is not on_cat)
    assert 0 not in on_cat.photos and len(on_cat.photos) == 3  # the three cat photos, the espresso left out
    assert on_cup.photos[0] == 0 and {label for _, label, _ in on_cup.concept.supports} & COFFEE_CLASSES
    for strip in strips:
        shares = [strip.concept.shares[i] for i in strip.photos]
        assert shares == sorted(shares, reverse=True)
        assert len(strip.pictures) == len(strip.photos)
        for i, picture in zip(strip.photos, strip.pictures):
            assert picture.size == photos[i].size
            assert np.abs(np.asarray(picture, float) - np.asarray(photos[i].convert("RGB"), float)).mean() > 3


def test_a_batchs_shared_concepts_are_found_on_its_thumbnails_and_name_its_records(lite0, cat, coffee):
    import io

    from gradcam.report import shared_concepts_of

    def record(image):
        buffer = io.BytesIO()
        image.convert("RGB").resize((320, 213)).save(buffer, "JPEG")
        return {"error": None, "photo_jpeg": buffer.getvalue()}

    records = [record(cat), {"error": "This image could not be explained.", "photo_jpeg": b""}, record(coffee),
               record(cat.transpose(Image.FLIP_LEFT_RIGHT))]
    strips = shared_concepts_of(lite0, records, 2)
    assert sorted({i for s in strips for i in s.photos}) == [0, 2, 3]  # indices into the records given
    on_cat = next(s for s in strips if s.concept.supports[0][1] in CAT_CLASSES)
    assert set(on_cat.photos) >= {0, 3}
    with pytest.raises(ValueError, match="nothing to find concepts in"):
        shared_concepts_of(lite0, records[1:2], 2)
    with pytest.raises(ValueError, match="at most 64 photos"):
        shared_concepts_of(lite0, records[:1] * 65, 2)
