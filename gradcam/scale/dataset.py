"""Explain a whole dataset on a Ray cluster: ``explain_dataset`` and
``python -m gradcam explain SOURCE --ray --out OUT``.

Ray Data reads the photos' bytes (from a folder, a glob or any filesystem pyarrow
reads: s3://, gs://, hdfs://, local), ``map_batches`` runs them through the
batched engine on a pool of actors (each loads the model once), and the rows are
written as one Parquet dataset under OUT. The same code runs on a laptop
(``ray.init()`` starts a local cluster) and on a cluster (``--address``).

Ray is an optional extra (``pip install -r requirements-ray.txt``); nothing else
in the project imports this module.
"""

from __future__ import annotations

import fnmatch
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..engine.graph import resolve_layer
from ..engine.targets import target_index
from ..intake.digest import sha256
from ..report.rows import ROW_COLUMNS, error_row, explanation_row
from ..intake.images import SUPPORTED_FORMATS

# The row every "many photos" output shares (gradcam/report/rows.py; ``file`` is the
# photo's path or URI here), and the map itself at the layer's resolution.
COLUMNS = (*ROW_COLUMNS, "map")
# Photos per actor call. Each photo is decoded at full size and its map upsampled to
# it, so 8 keeps an actor's memory to a few hundred MB with 12-megapixel photos;
# batch 8 ran as fast as 32 here (python -m bench --batch).
BATCH_SIZE = 8
CPUS_PER_ACTOR = 2  # TensorFlow threads per model replica; more replicas per core only contend
ACTOR_CPU_RESERVATION = 0.5  # what each actor asks Ray for (see _pool)
_WILDCARDS = "*?["


@dataclass(frozen=True)
class Summary:
    photos: int  # found under SOURCE
    skipped: int  # already in OUT from an earlier run
    explained: int  # new rows without an error
    failed: int  # new rows with an error sentence
    seconds: float
    out: str

    def line(self) -> str:
        done = self.explained + self.failed
        rate = f", {done / self.seconds:.1f} photos/s" if done and self.seconds > 0 else ""
        return (f"Explained {self.explained} of {done} new photos into {self.out} ({self.failed} could not be "
                f"read, {self.skipped} already done; {self.photos} found) in {self.seconds:.1f} s{rate}.")


def _ray():
    try:
        import ray
    except ImportError:
        raise ValueError("--ray needs Ray: pip install -r requirements-ray.txt") from None
    return ray


# --- which photos ----------------------------------------------------------------


def _filesystem(source: str):
    """(pyarrow filesystem, path inside it) for a local path or a URI."""
    from pyarrow import fs

    if "://" in source:
        try:
            return fs.FileSystem.from_uri(source)
        except Exception as error:  # unknown scheme, missing credentials, a library not installed
            raise ValueError(f"Cannot open {source}: {' '.join(str(error).split())}") from None
    return fs.LocalFileSystem(), str(Path(source).expanduser().resolve())


def _is_photo(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return not name.startswith(".") and name.rsplit(".", 1)[-1].lower() in SUPPORTED_FORMATS and "." in name


def list_photos(source: str) -> tuple[object, list[str]]:
    """(filesystem, sorted photo paths) under a folder, a glob or a single file."""
    from pyarrow import fs

    filesystem, path = _filesystem(source)
    pattern = None
    if any(c in path for c in _WILDCARDS):
        first = min(path.index(c) for c in _WILDCARDS if c in path)
        pattern, path = path, path[:first].rsplit("/", 1)[0] or "/"
    info = filesystem.get_file_info(path)
    if info.type == fs.FileType.NotFound:
        raise ValueError(f"{source} does not exist.")
    if info.type == fs.FileType.File:
        found = [path]
    else:
        found = [f.path for f in filesystem.get_file_info(fs.FileSelector(path, recursive=True))
                 if f.type == fs.FileType.File]
    photos = sorted(p for p in found if _is_photo(p) and (pattern is None or fnmatch.fnmatch(p, pattern)))
    if not photos:
        raise ValueError(f"{source} holds no images ({', '.join(SUPPORTED_FORMATS)}).")
    return filesystem, photos


def done_paths(out: str) -> set[str]:
    """Paths (the ``file`` column) already in the Parquet dataset under ``out`` (empty when there is none)."""
    import pyarrow.parquet as pq
    from pyarrow import fs

    filesystem, path = _filesystem(out)
    if filesystem.get_file_info(path).type != fs.FileType.Directory:
        return set()
    done: set[str] = set()
    for info in filesystem.get_file_info(fs.FileSelector(path, recursive=True)):
        if info.type != fs.FileType.File or not info.path.endswith(".parquet"):
            continue
        try:
            done.update(pq.read_table(info.path, columns=["file"], filesystem=filesystem).column("file").to_pylist())
        except Exception:  # a file an interrupted run left half-written: its photos are simply redone
            continue
    return done


# --- the actor ---------------------------------------------------------------------


def _schema():
    import pyarrow as pa

    types = {"target": pa.int32(), "map": pa.list_(pa.list_(pa.float32()))}
    return pa.schema([(name, types.get(name, pa.float64() if name.endswith("_probability") else pa.string()))
                      for name in COLUMNS])


class Explainer:
    """A Ray Data actor: loads the model once, then explains batches of photo bytes."""

    def __init__(self, model: str, layer, method: str, target, threads: int):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        try:  # a replica per CPUS_PER_ACTOR cores: keep each to its share
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already initialised in this worker
            pass
        import gradcam
        from gradcam.engine.graph import resolve_layer
        from gradcam.engine.targets import target_index

        self.model = gradcam.load_model(model)
        self.layer = resolve_layer(self.model, layer).name
        self.method = method
        self.targets = None if target is None else [target_index(self.model, target)]

    def __call__(self, batch):
        return explained_table(self.model, self.layer, self.method, self.targets, list(batch["path"]),
                               list(batch["bytes"]))


def explained_table(model, layer: str, method: str, targets, paths: list[str], datas: list[bytes]):
    """The rows of one batch of photo bytes as a pyarrow Table with the columns in
    ``COLUMNS``: what each actor writes (and what ``gradcam.audit`` reads back). A
    photo that cannot be read is a row with its sentence. Separate from the actor so
    it runs (and is tested) without Ray."""
    import pyarrow as pa

    import gradcam

    rows: list[dict] = [{} for _ in paths]
    digests = [sha256(bytes(data)) for data in datas]
    images = {}
    for i, (path, data) in enumerate(zip(paths, datas)):
        try:
            images[i] = gradcam.load_image(bytes(data))
        except ValueError as error:  # a broken photo is a row with its sentence
            rows[i] = error_row(error, file=path, sha256=digests[i], layer=layer, method=method)
    explained = gradcam.explain_batch(model, list(images.values()), targets, layer, method)
    for i, (explanation,) in zip(images, explained):
        rows[i] = explanation_row(explanation, file=paths[i], sha256=digests[i])
        rows[i]["map"] = explanation.raw.tolist()
    return pa.Table.from_pylist(rows, schema=_schema())


# --- the job -----------------------------------------------------------------------


def _pool(ray) -> tuple[int, float]:
    """(actors, CPUs each asks for). One replica per CPUS_PER_ACTOR cores of the
    cluster. Each asks for only a fraction of a CPU: an actor pool that reserves every
    CPU starves Ray Data's read tasks, and the job never finishes (a 2-CPU machine
    gets one actor holding 0.5 CPU, so reading always finds a free slot)."""
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, cpus // CPUS_PER_ACTOR), ACTOR_CPU_RESERVATION


def runtime_env(local: bool) -> dict:
    """The job's runtime environment. On a cluster the engine travels with the job
    (``py_modules``), so nodes need only the requirements; on this machine workers
    import it from here (an upload is pointless, and Ray does not upload the same
    package again to a second cluster started by the same process)."""
    package = Path(__file__).resolve().parents[1]  # the gradcam package
    env = {"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "3"}}
    if local:
        env["env_vars"]["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(package.parent), os.environ.get("PYTHONPATH", "")) if p)
    else:
        env["py_modules"] = [str(package)]
    return env


def _connect(ray, address: str | None) -> None:
    if not ray.is_initialized():
        # A local cluster we start listens on loopback only: Ray's control plane runs code for
        # whoever reaches it (docs/hosting.md).
        loopback = {"_node_ip_address": "127.0.0.1"} if address is None else {}
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env=runtime_env(local=address is None), **loopback)


def explain_dataset(source: str, out: str, *, model: str = "EfficientNet-Lite0", layer=None,
                    method: str = "gradcam", target=None, address: str | None = None,
                    batch_size: int = BATCH_SIZE) -> Summary:
    """Explain every photo under ``source`` into a Parquet dataset under ``out`` with the
    columns in ``COLUMNS``; photos already in ``out`` are skipped (rerun to resume).

    ``target`` is None (each photo's top-1 class), a class index or a label. Uses the
    running Ray cluster, or connects to ``address``, or starts a local one.
    """
    import gradcam

    began = time.perf_counter()
    if method not in gradcam.METHODS:
        raise ValueError(f'Unknown method "{method}"; choose one of: {", ".join(gradcam.METHODS)}.')
    if model not in dict(gradcam.available_models()):
        raise ValueError(f'--ray explains with a built-in model; "{model}" is not one.')
    filesystem, photos = list_photos(source)
    done = done_paths(out)
    todo = [p for p in photos if p not in done]
    if not todo:
        return Summary(len(photos), len(photos) - len(todo), 0, 0, time.perf_counter() - began, out)

    checked = gradcam.load_model(model)  # a bad --layer or --target is one sentence, before any cluster work
    layer = resolve_layer(checked, layer).name
    if target is not None:
        target_index(checked, target)

    ray = _ray()
    _connect(ray, address)
    actors, cpus = _pool(ray)
    import ray.data

    written_before = _row_counts(out)
    dataset = ray.data.read_binary_files(todo, include_paths=True, filesystem=filesystem)
    dataset = dataset.map_batches(
        Explainer, fn_constructor_kwargs={"model": model, "layer": layer, "method": method, "target": target,
                                          "threads": CPUS_PER_ACTOR},
        batch_size=batch_size, concurrency=actors, num_cpus=cpus, batch_format="numpy",
    )
    out_filesystem, out_path = _filesystem(out)
    dataset.write_parquet(out_path, filesystem=out_filesystem)
    explained, failed = (a - b for a, b in zip(_row_counts(out), written_before))
    return Summary(len(photos), len(photos) - len(todo), explained, failed, time.perf_counter() - began, out)


def _row_counts(out: str) -> tuple[int, int]:
    """(rows without an error, rows with one) in the dataset under ``out``."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pyarrow import fs

    filesystem, path = _filesystem(out)
    good = bad = 0
    if filesystem.get_file_info(path).type != fs.FileType.Directory:
        return 0, 0
    for info in filesystem.get_file_info(fs.FileSelector(path, recursive=True)):
        if info.type == fs.FileType.File and info.path.endswith(".parquet"):
            try:
                errors = pq.read_table(info.path, columns=["error"], filesystem=filesystem).column("error")
            except Exception:
                continue
            failed = pc.sum(pc.not_equal(errors, "")).as_py() or 0
            good, bad = good + len(errors) - failed, bad + failed
    return good, bad


def read_results(out: str):
    """The Parquet dataset under ``out`` as a pyarrow Table (for checks and notebooks)."""
    import pyarrow.parquet as pq

    filesystem, path = _filesystem(out)
    return pq.read_table(path, filesystem=filesystem)
