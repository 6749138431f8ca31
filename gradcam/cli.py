"""Command line front end: ``python -m gradcam models|methods|layers|predict|explain|video|check|audit``.

A thin layer over the engine, like the dashboard: parse arguments, call the
public API, print. Bad input of any kind ends as one ``error: <sentence>`` line
on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import os

# Must happen before TensorFlow is imported. The engine imports TensorFlow lazily
# (inside functions), so setting it here, before any model is loaded, is early enough.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import gradcam  # noqa: E402
from gradcam.engine.baselines import BASELINES  # noqa: E402
from gradcam.engine.graph import resolve_layer  # noqa: E402
from gradcam.engine.model import PREPROCESSING  # noqa: E402
from gradcam.engine.targets import target_index  # noqa: E402
from gradcam.intake.digest import sha256  # noqa: E402
from gradcam.intake.images import SUPPORTED_FORMATS  # noqa: E402
from gradcam.intake.text import counted  # noqa: E402
from gradcam.trust.metrics import METRICS  # noqa: E402
from gradcam.report.rows import ROW_COLUMNS, error_row, explanation_row, rows_csv  # noqa: E402

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
# summary.csv: the row every "many photos" output shares (gradcam/report/rows.py), and the overlay's path.
SUMMARY_COLUMNS = (*ROW_COLUMNS, "overlay")


class BadInput(ValueError):
    """Input the CLI itself refuses (the engine's own errors are ValueErrors too)."""


# --- TensorFlow, quietly --------------------------------------------------------


@contextlib.contextmanager
def _stderr_descriptor_silenced():
    """TensorFlow 2.21 prints oneDNN notices from C++ straight to file descriptor 2
    while it is imported, before TF_CPP_MIN_LOG_LEVEL applies; hide them."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no usable descriptor 2 (an unusual embedding): nothing to hide
        yield
        return
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules:
        return
    with _stderr_descriptor_silenced():
        import tensorflow  # noqa: F401
    # Python-side warnings (e.g. "WARNING:absl:...") are not for the CLI's user either.
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)


# --- models ---------------------------------------------------------------------

# Loaded models by (name or path, labels, preprocessing). One CLI run loads one
# model; this only matters when main() runs several times in one process (the
# tests), where it also keeps the compiled Grad-CAM functions that live on a model.
_MODELS: dict[tuple, gradcam.Model] = {}


def _load_model(args) -> gradcam.Model:
    name = args.model
    builtin = name in dict(gradcam.available_models())
    if builtin and (args.labels or args.preprocessing):
        raise BadInput(f"--labels and --preprocessing are for your own model files; {name} knows its own.")
    if not builtin and not Path(name).is_file():
        if Path(name).suffix.lower() in (".keras", ".h5") or os.sep in name:
            raise BadInput(f"No such model file: {name}.")
        choices = ", ".join(n for n, _ in gradcam.available_models())
        raise BadInput(f'Unknown model "{name}"; choose one of {choices}, or give the path to a .keras or .h5 file.')
    key = (name if builtin else str(Path(name).resolve()), args.labels, args.preprocessing)
    if key not in _MODELS:
        _import_tensorflow_quietly()
        _MODELS[key] = gradcam.load_model(name, labels=args.labels, preprocessing=args.preprocessing)
    return _MODELS[key]


# --- helpers --------------------------------------------------------------------


def _target(text: str | None):
    """--target as the engine wants it: an int for "285", the label otherwise."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return text


def _check_overlay_options(args) -> None:
    # Ask the engine on a 1-pixel image, so bad --alpha/--colormap fail before the
    # slow model load, with the engine's own message.
    gradcam.overlay(Image.new("RGB", (1, 1)), np.zeros((1, 1), np.float32), args.alpha, args.colormap)


def _method_name(method: str) -> str:
    return gradcam.METHODS[method].display_name


def _method_options(args) -> dict:
    """--smooth, --channels and Occlusion's --window, --stride, --fill as the engine takes them."""
    chosen = gradcam.METHODS[args.method]
    if args.channels is not None and not chosen.channel_budget:
        raise BadInput("--channels is a budget for Score-CAM only.")
    if getattr(args, "scales", None) is not None and chosen.fuses != "windows":
        raise BadInput("--scales is for SESS only.")
    options = {"smooth": args.smooth, "max_channels": args.channels}
    if getattr(args, "scales", None) is not None:
        options["scales"] = args.scales
    patch = {name: value for name, value in (("window", args.window), ("stride", args.stride), ("fill", args.fill))
             if value is not None}
    if patch and chosen.perturbs != "patches":
        raise BadInput(f"{', '.join('--' + name for name in patch)} shape Occlusion's patch only.")
    return {**options, **patch}


@contextlib.contextmanager
def _channel_progress(method: str, enabled: bool):
    """A progress bar of the channels (Score-CAM, Ablation-CAM) or patch positions (Occlusion) done."""
    if not enabled or not gradcam.METHODS[method].slow:
        yield None
        return
    from tqdm import tqdm

    chosen = gradcam.METHODS[method]
    unit = "position" if chosen.perturbs == "patches" else "pass" if chosen.kind == "combined" else "channel"
    with tqdm(desc=_method_name(method), unit=unit, file=sys.stderr, leave=False) as bar:
        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield advance


def _prediction_dicts(predictions) -> list[dict]:
    return [{"index": p.index, "label": p.label, "probability": p.probability} for p in predictions]


def _warn_small_photo(name: str, image, model) -> None:
    """The dashboard's sentence for a photo far below the network's input, as a warning on stderr."""
    if (note := gradcam.small_photo_note(image.size, model)) is not None:
        print(f"warning: {name}: {note}", file=sys.stderr)


def _note_no_evidence(name: str, explanation, say=None) -> None:
    """``say``: how a line reaches the terminal (a progress bar's own write, so the line is not
    drawn into the bar); stderr by default."""
    if explanation.no_positive_evidence:
        (say or _say)(f"note: {name}: nothing in layer {explanation.layer} speaks for {explanation.label}, "
                      "so the heatmap is empty; try another layer or class.")


def _say(line: str) -> None:
    """One line on stderr, on a line of its own: a ``_Progress`` line still open is ended first."""
    _Progress.end_open_line()
    print(line, file=sys.stderr)


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower().lstrip(".") in SUPPORTED_FORMATS


def _overlay_names(files: list[Path]) -> list[str]:
    """<stem>-gradcam.png per file; cat.jpg and cat.png become cat-jpg-… and cat-png-…"""
    stems = [f.stem for f in files]
    return [
        f"{f.stem}-gradcam.png" if stems.count(f.stem) == 1 else f"{f.stem}-{f.suffix.lstrip('.')}-gradcam.png"
        for f in files
    ]


# --- subcommands ----------------------------------------------------------------


def cmd_models(args) -> int:
    models = gradcam.available_models()
    width = max(len(name) for name, _ in models)
    for name, description in models:
        mark = "*" if name == gradcam.DEFAULT_MODEL else " "
        print(f"{mark} {name:<{width}}  {description}")
    print("\n* default model")
    return EXIT_OK


def cmd_methods(args) -> int:
    width = max(len(key) for key in gradcam.METHODS)
    for key, method in gradcam.METHODS.items():
        notes = [] if method.needs_gradients else ["no gradients"]
        if not method.class_specific:
            notes.append("same map for every class")
        if method.slow:
            notes.append("slow: many passes, with a progress bar")
        if method.ignores_layer:
            notes.append("ignores --layer")
        extra = f" ({'; '.join(notes)})" if notes else ""
        print(f"{key:<{width}}  {method.display_name}: {method.description}{extra}")
        print(f"{'':<{width}}  {method.paper}")
    return EXIT_OK


def cmd_metrics(args) -> int:
    """Every score 'check' prints, from the metrics registry: what it is, what higher means, its baseline."""
    width = max(len(key) for key in METRICS)
    for key, metric in METRICS.items():
        print(f"{key:<{width}}  {metric.title}: {metric.computed}")
        print(f"{'':<{width}}  baseline: {metric.random_baseline}")
        print(f"{'':<{width}}  {metric.paper}")
    return EXIT_OK


def cmd_layers(args) -> int:
    model = _load_model(args)
    default = gradcam.default_layer(model)
    layers = gradcam.target_layers(model)
    width = max(len(layer.name) for layer in layers)
    for layer in layers:
        shape = "x".join("?" if n is None else str(n) for n in layer.shape)
        mark = "  (default)" if layer.name == default.name else ""
        print(f"{layer.name:<{width}}  {shape}{mark}")
    return EXIT_OK


def cmd_predict(args) -> int:
    image = gradcam.load_image(args.image)  # before the model: a bad image fails fast
    model = _load_model(args)
    _warn_small_photo(Path(args.image).name, image, model)
    predictions = gradcam.predict(model, image, top=args.top)
    if args.json:
        report = {
            "model": model.name,
            "image": args.image,
            "sha256": sha256(Path(args.image).read_bytes()),
            "predictions": _prediction_dicts(predictions),
        }
        print(json.dumps(report, indent=2))
        return EXIT_OK
    width = max(len(p.label) for p in predictions)
    for rank, p in enumerate(predictions, 1):
        print(f"{rank:>2}. {p.label:<{width}}  {p.probability:7.2%}  (class {p.index})")
    return EXIT_OK


def cmd_explain(args) -> int:
    if args.ray:
        return _explain_on_ray(args)
    if args.address:
        raise BadInput("--address is the Ray cluster to use; it goes with --ray.")
    _check_overlay_options(args)
    source = Path(args.image)
    if source.is_dir():
        return _explain_folder(args, source)
    return _explain_image(args, source)


def _explain_on_ray(args) -> int:
    if not args.out:
        raise BadInput("--ray writes a Parquet dataset; give its folder with --out.")
    if args.heatmap or args.labels or args.preprocessing:
        raise BadInput("--ray explains with a built-in model into Parquet; --heatmap, --labels and --preprocessing "
                       "are for the single-machine command.")
    from gradcam.scale.dataset import explain_dataset

    _import_tensorflow_quietly()
    summary = explain_dataset(args.image, args.out, model=args.model, layer=args.layer, method=args.method,
                              target=_target(args.target), address=args.address)
    if args.json:
        print(json.dumps(summary.__dict__, indent=2))
    else:
        print(summary.line())
    return EXIT_OK if summary.explained or (summary.skipped and not summary.failed) else EXIT_FAILED


def _explain_image(args, source: Path) -> int:
    image = gradcam.load_image(source)
    options = _method_options(args)  # before the model: a bad option fails fast
    model = _load_model(args)
    _warn_small_photo(source.name, image, model)
    with _channel_progress(args.method, not args.json) as progress:
        explanation = gradcam.explain(model, image, _target(args.target), args.layer, args.method, **options,
                                      progress=progress)

    out = Path(args.out) if args.out else Path(f"{source.stem}-gradcam.png")  # in the current folder
    if out.is_dir():
        out = out / f"{source.stem}-gradcam.png"
    if not out.suffix:
        out = out.with_suffix(".png")
    _save(gradcam.overlay(image, explanation.heatmap, args.alpha, args.colormap), out)
    heatmap = None
    if args.heatmap:
        heatmap = Path(args.heatmap)
        heatmap.parent.mkdir(parents=True, exist_ok=True)
        np.save(heatmap, explanation.heatmap)
        heatmap = heatmap if heatmap.suffix == ".npy" else Path(f"{heatmap}.npy")  # what np.save wrote

    _note_no_evidence(source.name, explanation)
    if args.json:
        report = {
            "model": model.name,
            "image": str(source),
            "sha256": sha256(source.read_bytes()),
            "layer": explanation.layer,
            "method": explanation.method,
            "target": explanation.target,
            "label": explanation.label,
            "probability": explanation.probability,
            "predictions": _prediction_dicts(explanation.predictions),
            "no_positive_evidence": explanation.no_positive_evidence,
            "overlay": str(out),
            "heatmap": None if heatmap is None else str(heatmap),
        }
        print(json.dumps(report, indent=2))
        return EXIT_OK
    saved = f"{out}" + ("" if heatmap is None else f", heatmap {heatmap}")
    if not args.out:  # nobody named the file: say where it went, in full
        saved = f"{out.resolve()} (no --out given: written in the current folder)" + saved[len(str(out)):]
    print(
        f"{explanation.label} (class {explanation.target}, {explanation.probability:.1%}), "
        f"layer {explanation.layer}, {_method_name(explanation.method)} -> {saved}"
    )
    return EXIT_OK


def _explain_folder(args, folder: Path) -> int:
    from tqdm import tqdm

    if args.heatmap:
        raise BadInput("--heatmap saves one image's map; it cannot be used with a folder.")
    files = sorted(f for f in folder.iterdir() if _is_image_file(f))
    if not files:
        raise BadInput(f"The folder {folder} has no images ({', '.join(SUPPORTED_FORMATS)}).")
    folder = folder.resolve()  # so "." gets a real name for the default output folder
    out_dir = Path(args.out) if args.out else folder.with_name(f"{folder.name}-gradcam")
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"--out {out_dir} is a file; a folder of images needs an output folder.")

    # Load the model and check --layer/--target once, so a typo is one error, not one per image.
    options = _method_options(args)
    model = _load_model(args)
    layer = resolve_layer(model, args.layer)
    target = None if args.target is None else target_index(model, _target(args.target))
    out_dir.mkdir(parents=True, exist_ok=True)

    rows = []
    # Closed however the loop ends: an error raised in it is then printed below the bar, not into it.
    with tqdm(total=len(files), desc="Explaining", unit="image", file=sys.stderr) as progress:
        _explain_files(args, model, files, rows, layer, target, options, out_dir, progress)

    summary = out_dir / "summary.csv"
    summary.write_text(rows_csv(rows, SUMMARY_COLUMNS), encoding="utf-8", newline="")

    done = sum(1 for row in rows if not row["error"])
    if args.json:
        print(json.dumps({"model": model.name, "output": str(out_dir), "summary": str(summary), "images": rows},
                         indent=2))
    else:
        print(f"Explained {done} of {counted(len(rows), 'image')} into {out_dir} (summary: {summary}).")
    return EXIT_OK if done else EXIT_FAILED


def _explain_files(args, model, files, rows: list, layer, target, options: dict, out_dir: Path, progress) -> None:
    """Every photo of a folder explained under one progress bar; its lines are written through the bar."""
    # Through the batched engine, a chunk at a time: one compiled call per chunk, and
    # memory bounded by the chunk's pixels, whatever the photos' sizes.
    pending, pixels = [], 0
    for file, name in zip(files, _overlay_names(files)):
        try:
            image = gradcam.load_image(file)
        except ValueError as error:  # a broken image must not stop the others
            rows.append({**error_row(error, file=file.name, layer=layer.name, method=args.method), "overlay": None})
            progress.write(f"error: {file.name}: {error}", file=sys.stderr)
            progress.update()
            continue
        if (note := gradcam.small_photo_note(image.size, model)) is not None:
            progress.write(f"warning: {file.name}: {note}", file=sys.stderr)
        rows.append(None)  # filled in by _explain_chunk
        pending.append((file, name, len(rows) - 1, image))
        pixels += image.width * image.height
        if len(pending) == FOLDER_CHUNK or pixels >= FOLDER_CHUNK_PIXELS:
            _explain_chunk(args, model, pending, rows, layer, target, options, out_dir, progress)
            pending, pixels = [], 0
    if pending:
        _explain_chunk(args, model, pending, rows, layer, target, options, out_dir, progress)


def cmd_video(args) -> int:
    source = Path(args.video)
    if not source.is_file():
        raise BadInput(f"No such video file: {source}.")
    _check_overlay_options(args)
    if args.smooth is not None and not 0 < args.smooth <= 1:
        raise BadInput("--smooth is the newest map's weight, above 0 and at most 1.")
    out = Path(args.out) if args.out else Path(f"{source.stem}-gradcam.mp4")
    out.parent.mkdir(parents=True, exist_ok=True)
    video = gradcam.load_video_safely(source)  # before the model: a bad file fails fast
    model = _load_model(args)
    progress = _Progress("explained", "frames") if sys.stderr.isatty() and not args.json else None
    try:
        result = gradcam.explain_video(model, video, str(out), every=args.every, layer=args.layer,
                                       method=args.method, target=_target(args.target), smoothing=args.smooth,
                                       alpha=args.alpha, colormap=args.colormap,
                                       progress=progress.set if progress else None)
    finally:
        if progress:
            progress.close()
    timeline = result.timeline()
    if args.json:
        print(json.dumps({"video": str(source), "out": str(out), "frames": len(result), "fps": result.fps,
                          "every": result.every, "size": list(result.size), "timeline": timeline}, indent=2))
        return EXIT_OK
    labels = sorted({row["label"] for row in timeline}, key=[row["label"] for row in timeline].count, reverse=True)
    how = "N chosen from the measured speed" if args.every is None else "--every"
    print(f"{len(result)} frames at {result.fps:g} frames/s: every {result.every} explained ({how}), the rest "
          f"interpolated; top-1 mostly {', '.join(labels[:3])} -> {out}")
    return EXIT_OK


def cmd_concepts(args) -> int:
    """Deep Feature Factorization: the parts the model sees in a photo, each in its colour and
    with the classes it votes for; for a folder, the concepts its photos share (one group per
    sub-folder when it has sub-folders of images, else the folder)."""
    from gradcam.concepts import MAX_PHOTOS, find_concepts, shared_concepts

    source = Path(args.image)
    model = _load_model(args)
    if source.is_dir():
        groups = {sub.name: sorted(f for f in sub.iterdir() if _is_image_file(f))
                  for sub in sorted(source.iterdir()) if sub.is_dir()}
        groups = {name: files for name, files in groups.items() if files}
        if not groups:
            groups = {source.resolve().name: sorted(f for f in source.iterdir() if _is_image_file(f))}
        if not any(groups.values()):
            raise BadInput(f"The folder {source} has no images ({', '.join(SUPPORTED_FORMATS)}).")
        too_many = next((name for name, files in groups.items() if len(files) > MAX_PHOTOS), None)
        if too_many is not None:
            raise BadInput(f"{too_many} has {len(groups[too_many])} photos; concepts are shared over at most "
                           f"{MAX_PHOTOS} at once.")
        found = {name: shared_concepts(model, [gradcam.load_image(f) for f in files], args.concepts, args.layer)
                 for name, files in groups.items()}
        if args.json:
            print(json.dumps({name: [{"concept": c.number + 1, "present_in": c.present_in(), "photos": len(c.shares),
                                      "supports": [{"class": k, "label": label, "probability": p}
                                                   for k, label, p in c.supports]} for c in concepts]
                              for name, concepts in found.items()}, indent=2))
            return EXIT_OK
        for name, concepts in found.items():
            print(f"{name} ({len(groups[name])} photos):")
            for c in concepts:
                votes = ", ".join(f"{label.split(',')[0]} {p:.2f}" for _, label, p in c.supports)
                print(f"  concept {c.number + 1}: in {c.present_in()} of {len(c.shares)} photos; votes {votes}")
        return EXIT_OK
    image = gradcam.load_image(args.image)
    _warn_small_photo(source.name, image, model)
    found = find_concepts(model, image, args.concepts, args.layer)
    out = Path(args.out) if args.out else Path(f"{source.stem}-concepts.png")
    _save(found.picture(image, alpha=args.alpha), out)
    if args.json:
        print(json.dumps({"model": model.name, "image": args.image, "layer": found.layer, "picture": str(out),
                          "concepts": found.summary()}, indent=2))
        return EXIT_OK
    print(f"{found.layer}: {len(found.concepts)} concepts, drawn in {out}")
    for c in found.concepts:
        votes = ", ".join(f"{label.split(',')[0]} {p:.2f}" for _, label, p in c.supports)
        print(f"  #{'%02x%02x%02x' % c.colour} concept {c.number + 1}: {c.shares[0]:.0%} of the photo; votes {votes}")
    return EXIT_OK


def cmd_check(args) -> int:
    """Faithfulness scores (and the sanity check with --sanity) for one map."""
    image = gradcam.load_image(args.image)
    model = _load_model(args)
    _warn_small_photo(Path(args.image).name, image, model)
    explanation = gradcam.explain(model, image, _target(args.target), args.layer, args.method)
    scores = gradcam.faithfulness(model, image, explanation, steps=args.steps, baseline=args.baseline,
                                  road=not args.no_road)
    check = gradcam.sanity_check(model, image, explanation.target, explanation.layer, args.method) \
        if args.sanity else None
    if args.json:
        print(json.dumps({
            "model": model.name, "image": args.image, "sha256": sha256(Path(args.image).read_bytes()),
            "layer": explanation.layer, "method": explanation.method, "target": explanation.target,
            "label": explanation.label, "probability": scores.probability, "baseline": args.baseline,
            "steps": args.steps,
            "faithfulness": {"map": scores.summary(), "random": scores.random.summary(), "blob": scores.blob.summary()},
            "verdict": scores.verdict,
            "sanity": None if check is None else check.summary(),
        }, indent=2))
        return EXIT_OK
    print(f"{explanation.label} (class {explanation.target}, {scores.probability:.1%}), layer {explanation.layer}, "
          f"{_method_name(explanation.method)}")
    columns = [scores.summary(), scores.random.summary(), scores.blob.summary()]
    print(f"{'':36}{'this map':>10}{'random maps':>13}{'centred blob':>14}")
    for key, metric in METRICS.items():  # every score the registry holds, in its order
        if columns[0][key] is None:
            continue
        print(f"{metric.title:36}" + "".join(f"{metric.form.format(c[key]) if c[key] is not None else '-':>{w}}"
                                              for c, w in zip(columns, (10, 13, 14))))
    print(scores.verdict)
    if check is not None:
        print(f"Sanity check ({len(check.steps)} stages randomized from the top; rank correlation and SSIM with the "
              "original map):")
        for step in check.steps:
            print(f"  random down to {step.randomized_down_to:<28} {step.rank_correlation:6.2f} {step.ssim:6.2f}")
        print(check.verdict)
    return EXIT_OK


DEFAULT_AUDIT_REPORT = "audit.html"


def _audit_report_path(out: str | None) -> str:
    """--out as given, else audit.html in the current folder: an earlier audit's report there is
    not replaced without a word (say --out audit.html to replace it), and that is said before the
    audit, which may take an hour, not after."""
    if out:
        return out
    if Path(DEFAULT_AUDIT_REPORT).exists():
        raise BadInput(f"{DEFAULT_AUDIT_REPORT} already exists here (an earlier audit's report?); name the report "
                       f"with --out, or say --out {DEFAULT_AUDIT_REPORT} to replace it.")
    return DEFAULT_AUDIT_REPORT


def cmd_audit(args) -> int:
    """Audit a dataset for shortcuts: an HTML report (and CSV, JSON) of SpRAy's clusters per class."""
    from gradcam.report.audit_report import audit_csv, audit_html
    from gradcam.audit.sources import is_parquet

    args.out = _audit_report_path(args.out)
    source = Path(args.source)
    if not source.exists():
        raise BadInput(f"{args.source} does not exist.")
    # Before the audit runs (it may take an hour): a report that cannot be written loses it.
    inputs = [source] + ([Path(args.masks)] if args.masks else [])
    out = _writable_output(Path(args.out), "--out", inputs)
    csv_out = _writable_output(Path(args.csv), "--csv", inputs + [out]) if args.csv else None
    # A Ray job's maps are reused: the model is needed only for the reliance test, which
    # re-reads at most 16 photos per cluster.
    model = None if is_parquet(source) and args.no_model else _load_model(args)
    if is_parquet(source) and (args.layer or args.method != "gradcam"):
        raise BadInput("--layer and --method do not apply to a Parquet dataset: its maps are reused as they are.")
    if args.compare:
        return _audit_compare(args, model, source)
    progress = _Progress("Explaining") if not args.json and sys.stderr.isatty() else None
    result = gradcam.audit(model, str(source), masks=args.masks, layer=args.layer, method=args.method,
                           explain=args.explain, progress=None if progress is None else progress.set,
                           allow_uris=args.allow_uris)
    if progress is not None:
        progress.close()
    out.write_text(audit_html(result), encoding="utf-8")
    if csv_out is not None:
        csv_out.write_text(audit_csv(result), encoding="utf-8", newline="")
    # Not one photo read (every one broken, refused or out of budget): the audit says nothing.
    status = EXIT_FAILED if result.photos and len(result.broken) == len(result.photos) else EXIT_OK
    if args.json:
        print(result.to_json())
        return status
    print(result.summary())
    for cluster in result.flagged:
        print(f"  flagged: {cluster.reason}")
    for cls in result.flagged_classes:
        print(f"  flagged: {cls.reason}")
    for cls in result.classes:
        if cls.reason and not cls.flagged:
            print(f"  {cls.label}: {cls.reason}")
    for sentence in result.untested:
        print(f"  not tested: {sentence}")
    for problem in result.problems:
        print(f"  note: {problem}")
    print(f"Report: {out}")
    if status != EXIT_OK:
        print(f"error: none of the {len(result.photos)} photos could be read; the report lists why.", file=sys.stderr)
    return status


def _writable_output(path: Path, flag: str, inputs: list[Path]) -> Path:
    """``path`` checked before any work: not a folder or a device, not one of the inputs nor a file
    inside the photos' folder (a report must not overwrite a photo), and its folder writable
    (checked by creating a file there and removing it). Its folder is created."""
    shown = str(path)
    if path.is_dir():
        raise BadInput(f"{flag} {shown} is a folder; give a file name (for example {path / 'audit.html'}).")
    if path.exists() and not path.is_file():
        raise BadInput(f"{flag} {shown} is not a regular file (it is a device, a pipe or a socket).")
    target = path.resolve()
    for given in inputs:
        given = given.resolve()
        if target == given or (given.is_dir() and given in target.parents and path.exists()):
            raise BadInput(f"{flag} {shown} would overwrite "
                           f"{'the input ' + str(given) if target == given else 'a file among the inputs in ' + str(given)}"
                           "; write it elsewhere.")
    import tempfile

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".gradcam-write-check-"):
            pass
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError
    except OSError as error:
        reason = error.strerror or "permission denied"
        raise BadInput(f"{flag} {shown} cannot be written ({reason.lower()}); nothing was audited.") from None
    return path


def _audit_compare(args, model, source: Path) -> int:
    """``audit --compare OTHER``: both models audited on the same photos, side by side."""
    from gradcam.audit.compare import compare_models
    from gradcam.audit.sources import is_parquet
    from gradcam.report.audit_report import comparison_html

    if model is None or is_parquet(source):
        raise BadInput("--compare audits photos with both models; a Parquet dataset's maps belong to one model.")
    builtin = args.compare in dict(gradcam.available_models())
    other = _load_model(argparse.Namespace(**{**vars(args), "model": args.compare,
                                              "labels": None if builtin else args.labels,
                                              "preprocessing": None if builtin else args.preprocessing}))
    if list(other.labels) != list(model.labels):
        raise BadInput(f"The two models name different classes ({len(model.labels)} and {len(other.labels)}); "
                       "a comparison needs the same classes.")
    progress = _Progress("Explaining") if not args.json and sys.stderr.isatty() else None
    result = compare_models(model, other, str(source), masks=args.masks, first_layer=args.layer,
                            method=args.method, explain=args.explain,
                            progress=None if progress is None else progress.set)
    if progress is not None:
        progress.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(comparison_html(result), encoding="utf-8")
    if args.json:
        print(result.to_json())
        return EXIT_OK
    print(result.headline())
    for c in result.classes:
        print(f"  {c.label}: accuracy {_share(c.accuracy[0])} against {_share(c.accuracy[1])}, flagged "
              f"{c.flagged[0]} against {c.flagged[1]}")
    for a, b in result.counterfactual:
        print(f"  counterfactual photos, {a.name}: {a.right} against {b.right} of {a.total} right")
    for d in result.differences[:3]:
        print(f"  maps differ most: {d.path} ({d.difference:.2f})")
    print(f"Report: {out}")
    return EXIT_OK


def _share(value) -> str:
    return "-" if value is None else f"{value:.0%}"


class _Progress:
    """``done/total photos`` on one terminal line (only when stderr is a terminal)."""

    _open = False  # a progress line is on the terminal, not yet ended by a newline

    def __init__(self, what: str, unit: str = "photos"):
        self.what, self.unit = what, unit

    def set(self, done: int, total: int) -> None:
        print(f"\r{self.what} {done}/{total} {self.unit}", end="", file=sys.stderr, flush=True)
        _Progress._open = True

    def close(self) -> None:
        self.end_open_line()

    @staticmethod
    def end_open_line() -> None:
        """End the progress line, so what follows (an error, a note) starts a line of its own."""
        if _Progress._open:
            print(file=sys.stderr)
            _Progress._open = False


FOLDER_CHUNK = 32  # photos per batched engine call at most (the largest bucket)
FOLDER_CHUNK_PIXELS = 48_000_000  # ... and decoded pixels held at once (four 12-megapixel photos)


def _explain_chunk(args, model, pending, rows: list, layer, target, options: dict, out_dir: Path, progress) -> None:
    """Explain decoded photos [(file, overlay name, index of its row, image)] in one
    batched call; save their overlays and fill in their rows."""
    images = [image for _, _, _, image in pending]
    explained = gradcam.explain_batch(model, images, None if target is None else [target], layer, args.method,
                                      **options)
    for (file, name, index, image), many in zip(pending, explained):
        explanation = many[0]
        _save(gradcam.overlay(image, explanation.heatmap, args.alpha, args.colormap), out_dir / name)
        _note_no_evidence(file.name, explanation, say=lambda line: progress.write(line, file=sys.stderr))
        rows[index] = {**explanation_row(explanation, file=file.name, sha256=sha256(file.read_bytes())),
                       "overlay": str(out_dir / name)}
        progress.update()


# --- argument parsing -----------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def _add_model_options(parser: argparse.ArgumentParser, positional: bool = False) -> None:
    help_text = "a built-in model name or a .keras/.h5 file (default: %(default)s)"
    if positional:
        parser.add_argument("model", nargs="?", default=gradcam.DEFAULT_MODEL, help=help_text)
    else:
        parser.add_argument("--model", "-m", default=gradcam.DEFAULT_MODEL, help=help_text)
    parser.add_argument("--labels", metavar="FILE", help="class names for your own model (text or JSON)")
    parser.add_argument("--preprocessing", choices=list(PREPROCESSING),
                        help="how your own model expects pixels scaled")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gradcam", description="Explain image classifiers with Grad-CAM.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("models", help="list the built-in models")
    p.set_defaults(run=cmd_models)

    p = commands.add_parser("methods", help="list the CAM methods, with their papers")
    p.set_defaults(run=cmd_methods)

    p = commands.add_parser("metrics", help="list the scores 'check' prints, with their papers and baselines")
    p.set_defaults(run=cmd_metrics)

    p = commands.add_parser("layers", help="list the layers Grad-CAM can look at")
    _add_model_options(p, positional=True)
    p.set_defaults(run=cmd_layers)

    p = commands.add_parser("predict", help="the model's top classes for an image")
    p.add_argument("image", metavar="IMAGE")
    _add_model_options(p)
    p.add_argument("--top", type=_positive_int, default=5, help="how many classes (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=cmd_predict)

    p = commands.add_parser("explain", help="write a Grad-CAM overlay for an image or a folder of images")
    p.add_argument("image", metavar="IMAGE|FOLDER")
    _add_model_options(p)
    p.add_argument("--target", "-t", help="class index or label to explain (default: the top-1 class)")
    p.add_argument("--layer", "-l", help="layer to look at (default: the last feature map; see 'layers')")
    p.add_argument("--method", choices=list(gradcam.METHODS), default="gradcam", metavar="METHOD",
                   help="one of %(choices)s (default: %(default)s; see 'methods')")
    p.add_argument("--smooth", action="store_true",
                   help="average the map over flips and input scalings (six passes)")
    p.add_argument("--channels", type=_positive_int, metavar="N",
                   help="Score-CAM only: use the N channels with the largest variance (default: all)")
    p.add_argument("--window", type=_positive_int, metavar="PX",
                   help="Occlusion only: the patch's side in pixels of the network's input (default: 1/7 of it)")
    p.add_argument("--stride", type=_positive_int, metavar="PX",
                   help="Occlusion only: the step between patches (default: half the window)")
    p.add_argument("--fill", choices=BASELINES, help="Occlusion only: what covers the patch (default: blur)")
    p.add_argument("--scales", type=_positive_int, metavar="N",
                   help="SESS only: how many scales of the photo to slide windows over (default: 12)")
    p.add_argument("--alpha", type=float, default=0.4, help="heatmap opacity, 0..1 (default: %(default)s)")
    p.add_argument("--colormap", default="jet", help=f"one of {', '.join(gradcam.COLORMAPS)} (default: %(default)s)")
    p.add_argument("--out", "-o", metavar="PATH",
                   help="overlay PNG (default: <image stem>-gradcam.png here), or the output folder for a folder")
    p.add_argument("--heatmap", metavar="FILE.npy", help="also save the heatmap (image height x width, 0..1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a summary line")
    p.add_argument("--ray", action="store_true",
                   help="explain a dataset on Ray (IMAGE is a folder, a glob or a URI: s3://, gs://, hdfs://) "
                        "into a Parquet dataset under --out; rerun to resume")
    p.add_argument("--address", metavar="ADDR", help="with --ray: the Ray cluster (default: start one here)")
    p.set_defaults(run=cmd_explain)

    p = commands.add_parser("video", help="write a video with the Grad-CAM overlay on every frame")
    p.add_argument("video", metavar="VIDEO", help="an MP4, WebM or MOV file (at most 60 s; decoded in the sandbox)")
    _add_model_options(p)
    p.add_argument("--out", "-o", metavar="FILE.mp4", help="the MP4 written (default: <video stem>-gradcam.mp4 here)")
    p.add_argument("--every", type=_positive_int, metavar="N",
                   help="explain every N-th frame and interpolate the maps between (default: chosen from the "
                        "measured speed, so the video is explained about as fast as it plays)")
    p.add_argument("--target", "-t", help="class index or label for every frame (default: each frame's top-1)")
    p.add_argument("--layer", "-l", help="layer to look at (default: the last feature map; see 'layers')")
    p.add_argument("--method", choices=list(gradcam.METHODS), default="gradcam", metavar="METHOD",
                   help="one of %(choices)s (default: %(default)s)")
    p.add_argument("--smooth", type=float, nargs="?", const=0.5, metavar="W",
                   help="average the map over frames (W: the newest frame's weight, default 0.5)")
    p.add_argument("--alpha", type=float, default=0.4, help="heatmap opacity, 0..1 (default: %(default)s)")
    p.add_argument("--colormap", default="jet", help=f"one of {', '.join(gradcam.COLORMAPS)} (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the timeline as JSON instead of a summary line")
    p.set_defaults(run=cmd_video)

    p = commands.add_parser("check", help="can this map be trusted? faithfulness scores and the sanity check")
    p.add_argument("image", metavar="IMAGE")
    _add_model_options(p)
    p.add_argument("--target", "-t", help="class index or label to explain (default: the top-1 class)")
    p.add_argument("--layer", "-l", help="layer to look at (default: the last feature map; see 'layers')")
    p.add_argument("--method", choices=list(gradcam.METHODS), default="gradcam")
    p.add_argument("--steps", type=_positive_int, default=50, help="deletion/insertion steps (default: %(default)s)")
    p.add_argument("--baseline", choices=BASELINES, default="blur", help="what deleted pixels become")
    p.add_argument("--no-road", action="store_true", help="skip ROAD (18 sparse solves per map: the slow part)")
    p.add_argument("--sanity", action="store_true", help="also run the sanity check (randomizes a copy of the model)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=cmd_check)

    p = commands.add_parser("concepts", help="the parts the model sees (Deep Feature Factorization), each with "
                                             "the classes it votes for; for a folder, the concepts its photos share")
    p.add_argument("image", metavar="IMAGE|FOLDER")
    _add_model_options(p)
    p.add_argument("--layer", "-l", help="layer to factorise (default: the last feature map; see 'layers')")
    p.add_argument("--concepts", "-k", type=_positive_int, default=5, metavar="K",
                   help="how many concepts, 1 to 12 (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=0.6, help="tint strength, 0..1 (default: %(default)s)")
    p.add_argument("--out", "-o", metavar="PATH", help="the picture (default: <image stem>-concepts.png here)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a summary")
    p.set_defaults(run=cmd_concepts)

    p = commands.add_parser("audit", help="audit a dataset for shortcuts: SpRAy clusters of its maps, per class")
    p.add_argument("source", metavar="SOURCE",
                   help="a folder (one sub-folder per class, or flat), a .zip, or the Parquet output of 'explain --ray'")
    _add_model_options(p)
    p.add_argument("--masks", metavar="M", help="object masks: a folder of PNGs mirroring SOURCE, a .zip of them, "
                                                "or a CSV of boxes (path,x0,y0,x1,y1 in pixels)")
    p.add_argument("--layer", "-l", help="layer to look at (default: the last feature map; see 'layers')")
    p.add_argument("--method", choices=list(gradcam.METHODS), default="gradcam", metavar="METHOD",
                   help="one of %(choices)s (default: %(default)s)")
    p.add_argument("--explain", choices=("label", "predicted"), default="label",
                   help="the class each map explains: the true label where the folders give it, or the "
                        "top-1 class (default: %(default)s)")
    p.add_argument("--out", "-o", metavar="FILE.html",
                   help=f"the HTML report (default: {DEFAULT_AUDIT_REPORT} here, never replaced: a report you "
                        "name with --out is)")
    p.add_argument("--csv", metavar="FILE.csv", help="also write one row per photo")
    p.add_argument("--no-model", action="store_true",
                   help="with a Parquet SOURCE: cluster its maps without loading a model (no reliance test)")
    p.add_argument("--allow-uris", action="store_true",
                   help="with a Parquet SOURCE: read its photos from s3:// or gs:// URIs too (else local paths only)")
    p.add_argument("--compare", metavar="OTHER",
                   help="also audit with OTHER (a built-in name or a .keras/.h5 file with the same classes) and "
                        "write both side by side to --out")
    p.add_argument("--json", action="store_true", help="print the audit as JSON instead of a summary")
    p.set_defaults(run=cmd_audit)
    return parser


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # usage errors: argparse's own message, exit 2
    try:
        return args.run(args)
    except ValueError as error:  # BadInput, InvalidImageError, ModelLoadError, the engine's ValueErrors
        _say(f"error: {_one_line(error)}")
    except OSError as error:  # e.g. an output folder that cannot be created
        where = f" {error.filename}" if error.filename else ""
        _say(f"error: Cannot write{where}: {error.strerror or _one_line(error)}.")
    except KeyboardInterrupt:
        return 130
    return EXIT_BAD_INPUT
