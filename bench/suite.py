"""The speed benchmark: ``python -m bench``.

Machines here are shared and noisy, so nothing is compared with a wall-clock
constant. Every contender is timed in the same run, interleaved round by round
(A, B, C, A, B, C, ...), and the report gives medians and ratios against a
baseline measured alongside; the targets are ratios too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from PIL import Image

from bench.timing import machine_line, median_ms

# The photos that ship with the project (samples/), so the benchmark runs on what
# requirements.txt installs: no scikit-image needed.
SAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "samples")


SOAK_PHOTOS = ("cat.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg")


def sample_photo(file_name: str) -> Image.Image:
    with Image.open(os.path.join(SAMPLES_DIR, file_name)) as photo:
        return photo.convert("RGB")


def keras_tutorial_gradcam(keras_model, x, layer_name, class_index):
    """Grad-CAM the way Keras' own example does it: a sub-model rebuilt on every
    call and an eager gradient tape (without its in-place softmax removal, so the
    shared model is left as it was; that does not change the timing)."""
    import keras
    import tensorflow as tf

    grad_model = keras.Model(keras_model.inputs, [keras_model.get_layer(layer_name).output, keras_model.output])
    with tf.GradientTape() as tape:
        # The inputs in the structure the model was built with (a list of one): a bare
        # array works too, but Keras 3 warns on every call that the structures differ.
        features, predictions = grad_model([x])
        score = predictions[:, class_index]
    grads = tape.gradient(score, features)
    pooled = tf.reduce_mean(grads, axis=(0, 1, 2))
    heatmap = tf.squeeze(features[0] @ pooled[..., tf.newaxis])
    return tf.maximum(heatmap, 0) / tf.math.reduce_max(heatmap)


def _tf_keras_vis(keras_model, x, layer_name, class_index):
    """tf-keras-vis' Gradcam, set up once as its documentation shows, or None."""
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError:
        return None
    explainer = Gradcam(keras_model, model_modifier=ReplaceToLinear(), clone=True)
    score = CategoricalScore([class_index])
    return lambda: explainer(score, x, penultimate_layer=layer_name)


def measure_model(name: str, image: Image.Image, rounds: int, weights: str | None) -> dict:
    import gradcam

    model = gradcam.load_model(name, weights=weights) if weights is None else gradcam.load_model(name)
    layers = gradcam.target_layers(model)
    last = gradcam.default_layer(model).name
    early = layers[len(layers) // 4].name
    x = model.prepare(image)
    target = gradcam.predict(model, image)[0].index

    contenders = {
        "forward pass": lambda: gradcam.predict(model, image),
        "Grad-CAM, last layer": lambda: gradcam.explain(model, image, target=target),
        "Grad-CAM, early layer": lambda: gradcam.explain(model, image, target=target, layer=early),
        "all top-5 maps": lambda: gradcam.explain_many(model, image, top=5),
        "Grad-CAM++, last layer": lambda: gradcam.explain(model, image, target=target, method="gradcam++"),
        "Keras tutorial's way": lambda: keras_tutorial_gradcam(model.keras, x, last, target),
    }
    vis = _tf_keras_vis(model.keras, x, last, target) if "/" not in last else None
    if vis is not None:
        contenders["tf-keras-vis Gradcam"] = vis
    times = median_ms(contenders, rounds, warm=2)
    return {"model": name, "early layer": early, "last layer": last, "ms": times}


BATCH_SIZES = (1, 8, 32)


def batch_throughput(name: str, rounds: int, weights: str | None) -> dict:
    """Photos per second through ``explain_batch`` (top-1 map, photo decoding not
    included, resizing and upsampling included) at each batch size, interleaved."""
    import gradcam

    model = gradcam.load_model(name, weights=weights) if weights is None else gradcam.load_model(name)
    base = [sample_photo(n) for n in ("cat.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg")]
    photos = [p if i % 2 == 0 else p.transpose(Image.FLIP_LEFT_RIGHT) for i, p in enumerate(base * 8)]
    contenders = {size: (lambda size=size: gradcam.explain_batch(model, photos[:size])) for size in BATCH_SIZES}
    # Fewer rounds: one round of batch 32 is 32 explanations.
    ms = median_ms(contenders, max(3, rounds // 3), warm=2)
    return {"model": name, "photos_per_second": {size: size * 1000 / ms[size] for size in BATCH_SIZES}}


def map_encodings(rounds: int) -> list[dict]:
    """The service's map encoding (peak + float16) against a 16-bit PNG, on real
    Lite0 maps at four layer resolutions: bytes on the wire and encode time."""
    import base64
    import io

    import gradcam
    from gradcam.scale.wire import encode_map

    model = gradcam.load_model(gradcam.DEFAULT_MODEL)
    image = sample_photo("cat.jpg")
    rows = []
    for layer in [stage.name for stage in gradcam.stage_layers(model)][::-1][:4]:
        raw = gradcam.explain(model, image, layer=layer).raw

        def png16(raw=raw):
            buffer = io.BytesIO()
            Image.fromarray((raw / raw.max() * 65535).round().astype(np.uint16)).save(buffer, format="PNG")
            return base64.b64encode(buffer.getvalue())

        ms = median_ms({"float16": lambda raw=raw: encode_map(raw), "png16": png16}, rounds * 3, warm=2)
        rows.append({"layer": layer, "shape": raw.shape, "float16_bytes": len(encode_map(raw)["float16"]),
                     "png16_bytes": len(png16()), "float16_us": ms["float16"] * 1000, "png16_us": ms["png16"] * 1000})
    return rows


def report_encodings(rows: list[dict], out=sys.stdout) -> None:
    print("\nmap on the wire (base64), Lite0 on the cat photo: peak + float16 vs 16-bit PNG", file=out)
    for r in rows:
        h, w = r["shape"]
        print(f"  {r['layer']:<26} {h:>3}x{w:<3} float16 {r['float16_bytes']:6d} B {r['float16_us']:7.1f} us   "
              f"PNG {r['png16_bytes']:6d} B {r['png16_us']:7.1f} us", file=out)


def cold_first_explanation(model: str, runs_count: int = 3) -> dict:
    """Seconds from launching a new Python process to its first explanation (the
    model's conversion already cached), imports included: what a CLI user waits.
    The child reports the wall clock when done, so its slow exit (TensorFlow's
    thread pools) is not counted; it also reports where the time went. A shared
    machine makes single runs noisy: the median of ``runs_count`` runs."""
    code = (
        "import time; t0 = time.perf_counter();"
        # gradcam imports TensorFlow lazily: import it here, so "importing" holds all of it.
        "import tensorflow, keras, gradcam; from PIL import Image; t1 = time.perf_counter();"
        f"m = gradcam.load_model({model!r}); t2 = time.perf_counter();"
        "gradcam.explain(m, Image.new('RGB', (640, 480), 'gray')); t3 = time.perf_counter();"
        "print(time.time(), t3 - t0, t1 - t0, t2 - t1, t3 - t2)"
    )
    runs = []
    for _ in range(runs_count):
        launched = time.time()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             cwd=os.path.dirname(SAMPLES_DIR))
        done, inside, imports, load, first = (float(v) for v in out.stdout.strip().splitlines()[-1].split())
        runs.append({"from process start": done - launched, "after interpreter start": inside,
                     "imports": imports, "load": load, "first explanation": first})
    # The median run (by its total), whole: its parts add up to its total.
    return {**sorted(runs, key=lambda run: run["from process start"])[len(runs) // 2], "runs": len(runs)}


def overlay_ms(rounds: int) -> float:
    import gradcam

    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (768, 1024, 3), dtype=np.uint8))
    heatmap = np.random.default_rng(1).random((768, 1024)).astype(np.float32)
    return median_ms({"overlay": lambda: gradcam.overlay(photo, heatmap, 0.4, "jet")}, rounds * 3, warm=2)["overlay"]


def _resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def soak(count: int) -> dict:
    """Resident memory over ``count`` explanations in one process (after a warm-up
    of 50): photos, classes, layers and methods all vary, as a classroom's would."""
    import gc

    import gradcam

    model = gradcam.load_model(gradcam.DEFAULT_MODEL)
    photos = [sample_photo(n) for n in SOAK_PHOTOS]
    layers = [t.name for t in gradcam.target_layers(model)][-40::10]

    def one(i):
        gradcam.explain(model, photos[i % 4], target=[None, 967, 285, 504, 1][i % 5],
                        layer=layers[i % len(layers)], method=["gradcam", "gradcam++"][i % 2])

    for i in range(50):
        one(i)
    gc.collect()
    start = _resident_mb()
    began = time.perf_counter()
    for i in range(count):
        one(i)
    gc.collect()
    return {"explanations": count, "start_mb": start, "growth_mb": _resident_mb() - start,
            "seconds": time.perf_counter() - began}


def _jpeg(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def sandbox_cost(rounds: int) -> dict:
    """What the sandbox adds to an upload: the dashboard's decode in this process (load_image,
    then the display-size thumbnail) against the same in a sandboxed worker, side by side;
    and an own model's load (MobileNetV2's structure, untrained, as a 14 MB .keras file)."""
    import tempfile

    import gradcam
    from gradcam.intake.images import DISPLAY_MAX_SIDE

    astronaut = sample_photo("astronaut.jpg")
    photos = {
        "12 MP phone photo (4032x3024 JPEG)": _jpeg(astronaut.resize((4032, 3024), Image.BICUBIC)),
        "1024x768 JPEG": _jpeg(astronaut.resize((1024, 768), Image.BICUBIC)),
    }

    def in_process(raw):
        image = gradcam.load_image(raw)
        image.thumbnail((DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE), Image.LANCZOS)
        return image

    from bench.sandbox_task import display_sized_pixels as no_decoding
    from gradcam.intake import sandbox

    figures = {}
    for name, raw in photos.items():
        shown = in_process(raw).size
        times = median_ms({
            "in process": lambda raw=raw: in_process(raw),
            "sandboxed": lambda raw=raw: gradcam.load_image_safely(raw, max_side=DISPLAY_MAX_SIDE),
            # The sandbox alone: the file's bytes in, display-sized pixels out, no decoding.
            "round trip": lambda raw=raw: sandbox.image_pool().run(no_decoding, raw, *shown),
        }, rounds, warm=2)
        figures[name] = {**times, "bytes": len(raw)}

    import keras

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "mobilenetv2.keras")
        keras.applications.MobileNetV2(weights=None).save(path)
        with open(path, "rb") as f:
            model_file = f.read()
    times = median_ms({
        "in process": lambda: gradcam.load_model(model_file),
        "sandboxed": lambda: gradcam.load_model(model_file, sandbox=True),
    }, max(rounds // 3, 3), warm=2)
    figures[f"own model (MobileNetV2 .keras, {len(model_file) / 1e6:.0f} MB)"] = {**times, "bytes": len(model_file)}
    return figures


SANDBOX_TARGET_MS = 50.0  # added to a typical photo upload


def report_sandbox(figures: dict, out=sys.stdout) -> bool:
    print("\nsandbox: decoding an upload in a worker process instead of in the server", file=out)
    met_all = True
    for name, times in figures.items():
        added = times["sandboxed"] - times["in process"]
        line = (f"  {name:<44} in process {times['in process']:7.1f} ms, sandboxed {times['sandboxed']:7.1f} ms, "
                f"added {added:+7.1f} ms")
        if "round trip" in times:
            line += f" (the round trip alone: {times['round trip']:.1f} ms)"
        if "photo" in name or "JPEG" in name:
            met = added <= SANDBOX_TARGET_MS
            met_all &= met
            line += f"  target <= {SANDBOX_TARGET_MS:.0f} ms  {'met' if met else 'MISSED'}"
        print(line, file=out)
    return met_all


TARGETS = [
    # (what, ratio, limit, comparison): the targets, as ratios.
    ("last-layer Grad-CAM / forward pass", ("Grad-CAM, last layer", "forward pass"), 1.3, "<="),
    ("top-5 maps / one map", ("all top-5 maps", "Grad-CAM, last layer"), 1.5, "<="),
    ("Keras tutorial's way / ours", ("Keras tutorial's way", "Grad-CAM, last layer"), 5.0, ">="),
    ("tf-keras-vis / ours", ("tf-keras-vis Gradcam", "Grad-CAM, last layer"), 5.0, ">="),
]


def report_batches(batches: list[dict], out=sys.stdout) -> bool:
    """The batched engine's rows; target: the best batch size >= 1.5x batch 1's photos/s."""
    met_all = True
    print("\nbatched engine (explain_batch, top-1 map), photos per second:", file=out)
    for result in batches:
        rates = result["photos_per_second"]
        best = max(rates, key=rates.get)
        ratio = rates[best] / rates[1]
        met = ratio >= 1.5
        met_all &= met
        cells = "  ".join(f"batch {size}: {rate:6.1f}" for size, rate in rates.items())
        print(f"  {result['model']:<20} {cells}   best/batch 1: {ratio:.2f}x at batch {best}  target >= 1.5x  "
              f"{'met' if met else 'MISSED'}", file=out)
    return met_all


def report(results: list[dict], overlay: float, cold: dict, soaked: dict | None, out=sys.stdout) -> bool:
    met_all = True
    for result in results:
        times = result["ms"]
        print(f"\n{result['model']}  (last layer {result['last layer']}, early layer {result['early layer']})", file=out)
        for name, ms in times.items():
            print(f"  {name:<26} {ms:8.1f} ms", file=out)
        for what, (a, b), limit, sense in TARGETS:
            if a not in times:
                print(f"  {what:<40} not measured (tf-keras-vis not installed)", file=out)
                continue
            ratio = times[a] / times[b]
            met = ratio <= limit if sense == "<=" else ratio >= limit
            met_all &= met
            print(f"  {what:<40} {ratio:6.2f}x  target {sense} {limit}x  {'met' if met else 'MISSED'}", file=out)
    met = overlay <= 30.0
    met_all &= met
    print(f"\noverlay on 1024x768: {overlay:.1f} ms  target <= 30 ms  {'met' if met else 'MISSED'}", file=out)
    met = cold["from process start"] <= 5.0
    met_all &= met
    print(
        f"cold first explanation (EfficientNet-Lite0, cached conversion, median of {cold['runs']} runs): "
        f"{cold['from process start']:.2f} s from process start "
        f"({cold['after interpreter start']:.2f} s after the interpreter)  target <= 5 s  "
        f"{'met' if met else 'MISSED'}\n"
        f"  of which: importing (TensorFlow, Keras, gradcam) {cold['imports']:.2f} s, loading the model "
        f"{cold['load']:.2f} s, first explanation (trace and first run) {cold['first explanation']:.2f} s",
        file=out,
    )
    if soaked:
        met = soaked["growth_mb"] < 50
        met_all &= met
        print(
            f"soak: {soaked['explanations']} explanations in {soaked['seconds']:.1f} s, resident memory "
            f"{soaked['start_mb']:.0f} MB after warm-up, growth {soaked['growth_mb']:+.1f} MB  "
            f"target < 50 MB  {'met' if met else 'MISSED'}",
            file=out,
        )
    return met_all


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds per contender (default 15)")
    parser.add_argument("--large", default="ResNet50", help="the larger Keras application to time (untrained)")
    parser.add_argument("--soak", type=int, default=300, help="explanations in the memory soak (0: skip)")
    parser.add_argument("--trust-rounds", type=int, default=3,
                        help="rounds of the trust scores' rows (each takes seconds; 0: skip)")
    parser.add_argument("--cold-runs", type=int, default=3, help="new processes timed for the cold start (median)")
    parser.add_argument("--json", metavar="PATH", help="also write the raw figures as JSON")
    parser.add_argument("--batch", action="store_true", help="only the batched engine's rows")
    parser.add_argument("--ray", action="store_true",
                        help="only Ray Data against the single-process CLI on generated photos (slow; needs ray)")
    parser.add_argument("--audit", type=int, metavar="MAPS",
                        help="only the audit's rows: SpRAy over MAPS generated 7x7 maps (the target is for 100000), "
                             "and the audit's photos/s against explain_batch's on --audit-photos photos")
    parser.add_argument("--audit-photos", type=int, default=128, metavar="N",
                        help="photos for the audit's throughput row (default 128; 0 skips it)")
    parser.add_argument("--audit-benchmark", choices=("developed", "held-out", "all", "outside", "outside-held-out",
                                                      "patches"),
                        help="only the shortcut benchmark's table (gradcam/audit/benchmark.py; trains a tiny CNN "
                             "per case: minutes)")
    parser.add_argument("--audit-worst", action="store_true",
                        help="only the audit's worst case: the patch tests forced onto every cluster of 4+ photos, "
                             "against explain_batch's photos/s (--audit-photos photos)")
    parser.add_argument("--fix", action="store_true",
                        help="only the audit fix's rows: the corrected model's forward pass against the original's, "
                             "the comparison audit against one audit")
    parser.add_argument("--photos", type=int, default=500, help="photos for --ray (default 500)")
    parser.add_argument("--encoding", action="store_true", help="only the service's map encoding against PNG")
    parser.add_argument("--no-methods", action="store_true", help="skip the CAM methods' rows (bench_methods.py)")
    parser.add_argument("--methods-only", action="store_true", help="only the CAM methods' rows")
    parser.add_argument("--agreement-photos", type=int, default=None, metavar="N",
                        help="sample photos for Faster Score-CAM's agreement with the full method "
                             "(default: all; each runs all 1280 channels, ~40 s; 0: skip)")
    parser.add_argument("--newer-methods", action="store_true",
                        help="only pytorch-grad-cam 1.5.7's newer methods against their floors")
    parser.add_argument("--sandbox-only", action="store_true", help="only what the upload sandbox costs")
    parser.add_argument("--vit", action="store_true", help="only the transformer rows (Grad-CAM and rollout on a ViT)")
    parser.add_argument("--hub", action="store_true",
                        help="only the KerasHub rows (Grad-CAM on a KerasHub ViT and ResNet; needs keras-hub)")
    parser.add_argument("--uploads", action="store_true",
                        help="only the upload rows: a plain Keras and a KerasHub file read in the sandbox, before and "
                             "after the KerasHub worker of its own (needs keras-hub; boots a dozen workers: minutes)")
    parser.add_argument("--what-if-only", action="store_true", help="only what_if against predict")
    parser.add_argument("--video-only", action="store_true",
                        help="only video's rows: explain_video against explain_batch, and Live fed 30 frames/s")
    args = parser.parse_args(argv)
    print(machine_line(), flush=True)  # every figure below is read next to this line
    if args.vit:
        from bench import vit as bench_vit

        met = bench_vit.report(bench_vit.measure(args.rounds))
        print("\nall targets met" if met else "\nsome targets missed")
        return 0
    if args.hub:
        from bench import hub as bench_hub

        met = bench_hub.report(bench_hub.measure(args.rounds))
        print(machine_line())
        print("\nall targets met" if met else "\nsome targets missed")
        return 0
    if args.uploads:
        from bench import uploads as bench_uploads

        bench_uploads.report(bench_uploads.measure(max(1, min(args.rounds, 3))))
        print(machine_line())  # the load again: these rows take minutes
        return 0
    if args.what_if_only:
        import gradcam
        from bench import what_if as bench_what_if

        met = bench_what_if.report(bench_what_if.measure(gradcam.load_model(gradcam.DEFAULT_MODEL),
                                                         sample_photo("cat-and-coffee.jpg"), args.rounds))
        print("\nall targets met" if met else "\nsome targets missed")
        return 0
    if args.video_only:
        import gradcam
        from bench import video as bench_video

        model, cup = gradcam.load_model(gradcam.DEFAULT_MODEL), sample_photo("coffee.jpg")
        met = bench_video.report(bench_video.video_against_batch(model, cup, max(1, args.rounds // 5)),
                                 bench_video.live_camera(model, cup))
        print(machine_line())  # the load again: these rows take a minute
        print("\nall targets met" if met else "\nsome targets missed")
        return 0
    if args.newer_methods:
        from bench import methods as bench_methods

        met = bench_methods.report_newer(bench_methods.measure_newer(sample_photo("cat.jpg"), args.rounds))
        print(machine_line())  # the load again, after the slow rows
        print("\nall targets met" if met else "\nsome targets missed")
        return 0
    if args.sandbox_only:
        met = report_sandbox(sandbox_cost(args.rounds))
        print("\nall targets met" if met else "\nsome targets missed")
        return 0

    if args.audit_benchmark:
        from bench.audit import benchmark_main

        return benchmark_main(args.audit_benchmark)
    if args.audit_worst:
        from bench.audit import worst_case

        return worst_case(args.audit_photos)
    if args.audit:
        from bench.audit import main as audit_main

        return audit_main(args.audit, args.audit_photos)

    if args.fix:
        from bench import fix as bench_fix

        met = bench_fix.report(bench_fix.measure(args.rounds))
        print("\nall targets met" if met else "\nsome targets missed")
        return 0

    if args.ray:
        from bench.ray import main as ray_main

        return ray_main(args.photos)

    import gradcam

    if args.encoding:
        report_encodings(map_encodings(args.rounds))
        return 0
    if args.batch:
        met = report_batches([batch_throughput(gradcam.DEFAULT_MODEL, args.rounds, weights="imagenet"),
                              batch_throughput(args.large, args.rounds, weights=None)])
        print("\nall targets met" if met else "\nsome targets missed")
        return 0

    image = sample_photo("cat.jpg")
    gradcam.load_model(gradcam.DEFAULT_MODEL)  # make sure the conversion is cached before the cold run
    results, overlay, cold, soaked, sandboxed, met = [], None, None, None, None, True
    batches, encodings = [], []
    if not args.methods_only:
        cold = cold_first_explanation(gradcam.DEFAULT_MODEL, args.cold_runs)
        results = [
            measure_model(gradcam.DEFAULT_MODEL, image, args.rounds, weights="imagenet"),
            measure_model(args.large, image, args.rounds, weights=None),
        ]
        overlay = overlay_ms(args.rounds)
        soaked = soak(args.soak) if args.soak and os.path.exists("/proc/self/statm") else None
        sandboxed = sandbox_cost(args.rounds)
        batches = [batch_throughput(gradcam.DEFAULT_MODEL, args.rounds, weights="imagenet"),
                   batch_throughput(args.large, args.rounds, weights=None)]
        encodings = map_encodings(args.rounds)
        met = report(results, overlay, cold, soaked)
        met &= report_sandbox(sandboxed)
        met &= report_batches(batches)
        report_encodings(encodings)
        from bench import what_if as bench_what_if

        met &= bench_what_if.report(bench_what_if.measure(gradcam.load_model(gradcam.DEFAULT_MODEL),
                                                          sample_photo("cat-and-coffee.jpg"), args.rounds))
    methods, agreement = [], None
    if not args.no_methods:
        from bench import methods as bench_methods

        methods = [bench_methods.measure(gradcam.DEFAULT_MODEL, image, args.rounds, "imagenet",
                                         slow_rounds=max(1, args.rounds // 5)),
                   bench_methods.measure(args.large, image, args.rounds, None, slow_rounds=max(1, args.rounds // 5))]
        photos = dict(list(bench_methods.sample_photos().items())[:args.agreement_photos])
        agreement = bench_methods.budget_agreement(photos) if photos else None
        met &= bench_methods.report(methods, agreement)
    trusted = None
    if args.trust_rounds > 0 and not args.methods_only:
        from bench import trust as bench_trust

        trusted = bench_trust.measure(gradcam.load_model(gradcam.DEFAULT_MODEL), image, args.trust_rounds)
        met &= bench_trust.report(trusted)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"models": results, "batches": batches, "encodings": encodings, "overlay_ms": overlay,
                       "cold_s": cold, "soak": soaked,
                       "sandbox_ms": sandboxed, "methods": methods, "scorecam_budget_agreement": agreement,
                       "trust": trusted},
                      f, indent=2)
    print("\nall targets met" if met else "\nsome targets missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
