"""Upload rows of the benchmark: what reading a model file in the sandbox costs a plain Keras
file and a KerasHub file, before and after the KerasHub worker of its own
(``python -m bench --uploads``; needs keras-hub).

Before (until issue 28's item 1), the one model worker imported keras_hub and read a tiny
KerasHub model before it was ready, for every upload; after, the plain model worker reads
the file's config and sends KerasHub files on to a KerasHub worker, started by the first
such file. "Before" is run here as a worker of kind "hub" reading every file (what the old
model worker was), so both sides run on this checkout, interleaved round by round.

Two situations: *cold*, the worker is started when the file arrives (a server just up,
or Explore's "Loading your model..." while the worker still boots, which is what people
saw under load), and *warm*, the model worker was booted in the background beforehand
(the dashboard starts it when the upload box opens) and the KerasHub worker was not.
"""

from __future__ import annotations

import statistics
import sys
import time


def _files() -> dict[str, bytes]:
    """A small CNN of one's own and a small KerasHub ViT, each saved as a .keras file's bytes."""
    import tempfile

    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    cnn = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Conv2D(16, 3, activation="relu"),
                            keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
                            keras.layers.Dense(5)])
    vit = keras_hub.models.ViTImageClassifier(
        backbone=keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=4, num_layers=2, num_heads=2,
                                              hidden_dim=16, mlp_dim=32),
        num_classes=3,
        preprocessor=keras_hub.models.ViTImageClassifierPreprocessor(
            image_converter=keras_hub.layers.ViTImageConverter(image_size=(32, 32), scale=1 / 255)))
    files = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, model in (("plain Keras CNN", cnn), ("KerasHub ViT", vit)):
            path = f"{folder}/{len(files)}.keras"
            model.save(path)
            with open(path, "rb") as saved:
                files[name] = saved.read()
    return files


def _pool(kind: str):
    from gradcam.errors import ModelLoadError
    from gradcam.intake.sandbox import MODEL_BUDGET, Pool

    return Pool(kind, 1, MODEL_BUDGET, ModelLoadError)


def _read(pool, data: bytes, hub: bool) -> dict:
    from gradcam.intake.sandbox import model_memory_mb, verified_model

    return pool.run(verified_model, data, hub, memory_mb=model_memory_mb(len(data)))


def _before(data: bytes, warm) -> float:
    """The old way: one worker that imported keras_hub reads every file."""
    pool = warm if warm is not None else _pool("hub")
    start = time.perf_counter()
    try:
        assert "config" in _read(pool, data, True)
        return time.perf_counter() - start
    finally:
        if warm is None:
            pool.close()


def _after(data: bytes, warm) -> float:
    """This checkout's way (``verified_model_file``): the plain worker first, KerasHub files on to their own."""
    plain = warm if warm is not None else _pool("model")
    hub = None
    start = time.perf_counter()
    try:
        reply = _read(plain, data, False)
        if reply.get("needs_hub"):
            hub = _pool("hub")
            reply = _read(hub, data, True)
        assert "config" in reply
        return time.perf_counter() - start
    finally:
        if hub is not None:
            hub.close()
        if warm is None:
            plain.close()


def _boot(kind: str) -> float:
    """Seconds from starting a worker of ``kind`` to its being ready (before any file)."""
    pool = _pool(kind)
    start = time.perf_counter()
    try:
        pool.start()
        next(iter(pool._all)).wait_ready()
        return time.perf_counter() - start
    finally:
        pool.close()


def measure(rounds: int) -> list[dict]:
    files = _files()
    boots: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(rounds):  # the worker a plain upload waits for: the old one (keras_hub) against the plain one
        boots["before"].append(_boot("hub"))
        boots["after"].append(_boot("model"))
    warm_before, warm_after = _pool("hub"), _pool("model")
    try:
        warm_before.start()
        warm_after.start()
        plain = files["plain Keras CNN"]
        _read(warm_before, plain, True)  # both booted, and each has read a file once
        _read(warm_after, plain, False)
        samples: dict[tuple, list[float]] = {}
        for _ in range(rounds):
            for name, data in files.items():
                for situation, (old, new) in (("cold", (None, None)), ("warm", (warm_before, warm_after))):
                    for side, run, pool in (("before", _before, old), ("after", _after, new)):
                        samples.setdefault((name, situation, side), []).append(run(data, pool))
    finally:
        warm_before.close()
        warm_after.close()
    return [{"file": "no file", "situation": "the model worker's boot to ready",
             "before_s": statistics.median(boots["before"]), "after_s": statistics.median(boots["after"])}] + [
            {"file": name, "situation": situation, "before_s": statistics.median(samples[(name, situation, "before")]),
             "after_s": statistics.median(samples[(name, situation, "after")])}
            for name in files for situation in ("cold", "warm")]


def report(rows: list[dict], out=sys.stdout) -> None:
    print("\nModel uploads through the sandbox: median seconds from the file's arrival to its model read "
          "(before: one model worker with keras_hub; after: keras_hub only in the KerasHub worker)", file=out)
    for row in rows:
        where = row["situation"] if row["file"] == "no file" else f"{row['file']}, {row['situation']} worker"
        print(f"  {where}: before {row['before_s']:.2f} s, after "
              f"{row['after_s']:.2f} s ({row['after_s'] / row['before_s']:.2f}x)", file=out)

