"""Untrusted bytes are decoded and loaded in sandboxed worker processes.

A crafted file can crash the C library that reads it (a one-byte change to an
``.h5`` model segfaults inside h5py), make it loop forever, or make it allocate
gigabytes. In the one process every dashboard session shares, any of these takes
everyone down. So uploads are read here instead:

- A small pool of worker processes per kind of file, started once and reused:
  images (Pillow and NumPy only, two workers), models (Keras, one worker) and
  KerasHub models (Keras and keras_hub, one worker, started by the first file that
  needs it: importing keras_hub costs seconds that a plain Keras upload never pays).
- Each worker is a fresh interpreter, never a fork: forking a process that has
  TensorFlow loaded copies its locks mid-use without its threads. (It is
  started with ``subprocess`` rather than ``multiprocessing``'s "spawn", which
  would re-run the caller's main script inside the worker: a library user's
  script without a ``__main__`` guard would load itself again, and Streamlit's
  ``__main__`` is its command line.)
- The kernel enforces the budgets: ``RLIMIT_AS`` (address space, set to what
  the worker uses once its libraries are loaded plus the budget), ``RLIMIT_CPU``
  (re-armed before every task, so a reused worker gets the full budget each
  time) and no core files; the parent adds a wall-clock timeout for a worker
  that sleeps or blocks.
- A crash, a timeout or an exhausted budget becomes one sentence, "This file
  could not be read safely: it needed more than N seconds." (or "N MB of
  memory", or "it crashed the reader"), raised as the caller's own error type;
  that worker is killed and replaced, and every other caller carries on.
- Only plain data comes back, and the parent unpickles it with an unpickler
  that knows NumPy arrays and Python's built-in containers and nothing else,
  so even a worker whose decoder was subverted cannot make the parent run code.

``load_image_safely`` is the public entry for images; own models use it through
``gradcam.load_model(..., sandbox=True)``. The dashboard always uses both.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import logging
import math
import os
import pickle
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, OrderedDict, deque
from contextvars import ContextVar
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Callable

import numpy as np
from PIL import Image

from ..errors import InvalidImageError, InvalidVideoError, ModelLoadError, PixelBudgetExceeded
from .pixel_budget import session_ledger
from .text import valid_text


@dataclass(frozen=True)
class Budget:
    """What one task in a worker may use: memory beyond what the worker needs idle,
    CPU seconds, and seconds on the wall clock (for a task that sleeps or blocks)."""

    memory_mb: int
    cpu_seconds: float
    wall_seconds: float


# A 50-megapixel photo (the largest load_image accepts) decodes in ~1 s within ~600 MB.
# The wall clock is only the backstop for a task that sleeps or blocks: on a busy
# machine a CPU second can take several seconds, so it is three times the CPU budget.
IMAGE_BUDGET = Budget(memory_mb=1024, cpu_seconds=10, wall_seconds=30)
# A model file may be 1 GB; reading it holds the file, Keras' variables and the copies sent
# back. This is the ceiling: each file gets model_memory_mb(its size).
MODEL_BUDGET = Budget(memory_mb=4096, cpu_seconds=60, wall_seconds=180)
# A video holds its kept frames (at most MAX_FRAMES of DEFAULT_MAX_SIDE) while it decodes the rest;
# decoding MAX_DECODED_PIXELS takes ~15 CPU seconds here.
VIDEO_BUDGET = Budget(memory_mb=1536, cpu_seconds=60, wall_seconds=180)
# The most a reply may hold: a 50-megapixel RGB image; the weights of MAX_PARAMETERS in float32;
# a video's frames (gradcam.intake.video.reply_bytes_most).
REPLY_BYTES = {"image": 200 * 2**20, "model": 1300 * 2**20, "hub": 1300 * 2**20, "video": 740 * 2**20}
# Starting a worker is not the file's fault: importing TensorFlow takes 3-15 s on a busy machine.
BOOT_SECONDS = 180
# How long a caller waits for a free worker before it is told so (a hostile model may hold the
# model worker for its whole 180 s budget: other uploads must not wait behind it unseen).
BUSY_WAIT_SECONDS = 20
BUSY = "The server is busy reading other files; try again in a moment."
# What a worker inherits of the server's environment: nothing else (no credentials, no tokens).
ENV_ALLOWED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ")
# As root, a worker becomes this user once its libraries are loaded (GRADCAM_SANDBOX_USER;
# "-" keeps the server's user): a subverted decoder then cannot read or write the server's
# files, signal its processes or use root's privileges. Where that fails: a logged note.
SANDBOX_USER = "nobody"
_log = logging.getLogger("gradcam.sandbox")
# The first thing a worker runs, before it imports anything (a new namespace needs one thread):
# a network namespace of its own, with no interface but a down loopback, so a subverted decoder
# can reach nothing. As root that is unshare(CLONE_NEWNET); otherwise inside a new user
# namespace, where the kernel allows it. Where neither works the worker runs on with the network.
_ISOLATE = (
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "NEWNET, NEWUSER = 0x40000000, 0x10000000\n"
    "if libc.unshare(NEWNET if os.geteuid() == 0 else NEWNET | NEWUSER) != 0:\n"
    "    os.environ['GRADCAM_SANDBOX_NETWORK'] = 'shared'\n"
)

# --- worker side ---------------------------------------------------------------------


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _cpu_seconds_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _silence() -> None:
    """Decoders and h5py complain on stderr about every damaged file: not in the server's log.
    (The worker does this itself: the server opens nothing for it.)"""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _die_with_parent() -> None:
    """Exit when the server process is gone, even mid-task (an idle worker also sees its
    socket close). Not PR_SET_PDEATHSIG: Linux ties that to the thread that started the
    worker, and Streamlit runs each rerun in a thread that soon ends."""
    server = os.getppid()

    def watch() -> None:
        while os.getppid() == server:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-server", daemon=True).start()


def _preload(kind: str) -> None:
    """Load what tasks need before the memory limit is set, so the limit measures the file."""
    from . import images

    Image.init()
    if kind in ("model", "hub"):
        import keras

        from . import model_bytes  # noqa: F401

        # One tiny model built and run: TensorFlow's thread pools and kernels exist before the limit.
        tiny = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(1, 2), keras.layers.Flatten(),
                                 keras.layers.Dense(1)])
        tiny(np.zeros((1, 4, 4, 1), np.float32))
        keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tiny), safe_mode=True)
        # Both file formats read once, the way tasks read them: every module they import is
        # imported now, while the worker may still read the installation (see _drop_privileges).
        import tempfile

        from .model_bytes import keras_model_from_bytes
        from .presets import needs_hub

        with tempfile.TemporaryDirectory() as folder:
            for name in ("tiny.keras", "tiny.h5"):
                tiny.save(os.path.join(folder, name))
                with open(os.path.join(folder, name), "rb") as saved:
                    data = saved.read()
                    needs_hub(data)  # what a plain worker asks of every file first
                    keras_model_from_bytes(data)
            if kind == "hub":  # keras_hub imported now (it registers KerasHub's classes), one of its models read once
                _read_tiny_hub_model(os.path.join(folder, "tiny_hub.keras"))
        keras.backend.clear_session()
    elif kind == "video":
        from . import video

        video.decoded_video(_tiny_video(), 16)  # FFmpeg's decoders and scaler loaded before the limit
    else:
        images.load_image(_TINY_PNG)


def _read_tiny_hub_model(path: str) -> None:
    """A tiny KerasHub classifier saved (as a file and as a preset folder) and read back the way a
    task reads them, so the modules KerasHub imports lazily are imported before the worker drops its privileges."""
    import keras_hub

    from .model_bytes import keras_model_from_bytes

    converter = keras_hub.layers.ViTImageConverter(image_size=(8, 8), scale=1 / 255)
    backbone = keras_hub.models.ViTBackbone(image_shape=(8, 8, 3), patch_size=4, num_layers=1, num_heads=1,
                                            hidden_dim=4, mlp_dim=4)
    preprocessor = keras_hub.models.ViTImageClassifierPreprocessor(image_converter=converter)
    classifier = keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=2, preprocessor=preprocessor)
    classifier.save(path)
    with open(path, "rb") as saved:
        verified_model(saved.read(), True)
    from .presets import preset_folder_bytes

    classifier.save_to_preset(path + ".preset")
    verified_model(preset_folder_bytes(path + ".preset"), True)


def _import_task_modules(modules: list[str]) -> None:
    """The modules the server's tasks come from, imported while the worker may still read
    them: unpickling a task imports its module, after the drop, and the sandbox's user
    cannot read a checkout that only its owner can (a root user's mode-700 home). A module
    that fails here fails later as the task's crash, as it would have anyway."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:
            pass


def serve() -> None:
    """A worker's life: ``python -c "from gradcam.intake.sandbox import serve; serve()" FD KIND MEMORY_MB
    MODULES`` (the task modules to import before the drop, comma-separated)."""
    fd, kind, memory_mb = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    conn = Connection(fd)
    _silence()
    _die_with_parent()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash writes nothing to disk
    _preload(kind)
    _import_task_modules([m for m in sys.argv[4].split(",") if m] if len(sys.argv) > 4 else [])
    identity = _drop_privileges()
    ceiling = _address_space() + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    conn.send_bytes(b"ready" + json.dumps(identity).encode())
    while True:
        try:
            task, data = conn.recv_bytes(), conn.recv_bytes()
        except EOFError:
            return  # the server closed the connection
        try:
            function, args, cpu_seconds, task_memory_mb = pickle.loads(task)
            _arm_limits(cpu_seconds, task_memory_mb, ceiling)
            reply = ("ok", function(data, *args))
        except (InvalidImageError, InvalidVideoError, ModelLoadError) as error:
            reply = ("memory", "") if _caused_by_memory(error) else ("refused", str(error))
        except MemoryError:
            reply = ("memory", "")
        except BaseException as error:  # anything else is a fault of the reader, not an answer
            reply = ("failed", type(error).__name__)
        del data
        try:
            _send(conn, reply)
        except MemoryError:
            _send(conn, ("memory", ""))


def _drop_privileges() -> dict:
    """As root, become the sandbox's user (uid and gid from the server, no supplementary
    groups) for good, once the libraries are loaded: the installation may live where only
    root can read it (/root/.pyenv), but nothing is imported after this. Returns who the
    worker is now, for the server's log."""
    uid, gid = os.environ.pop("GRADCAM_SANDBOX_UID", ""), os.environ.pop("GRADCAM_SANDBOX_GID", "")
    if os.geteuid() == 0 and uid and gid:
        try:
            os.setgroups([])
            os.setgid(int(gid))
            os.setuid(int(uid))
        except OSError as error:
            return {"uid": os.getuid(), "dropped": False, "why": error.strerror or type(error).__name__}
    return {"uid": os.getuid(), "dropped": os.getuid() != 0}


def _arm_limits(cpu_seconds: float, memory_mb: int, ceiling: int) -> None:
    """Re-arm both limits for this task. RLIMIT_CPU counts the whole life of the process;
    the soft RLIMIT_AS may be set anywhere below the hard ceiling fixed at boot."""
    soft = math.ceil(_cpu_seconds_used() + cpu_seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))
    memory = min(ceiling, _address_space() + memory_mb * 2**20)
    resource.setrlimit(resource.RLIMIT_AS, (memory, ceiling))


def _caused_by_memory(error: BaseException) -> bool:
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, MemoryError):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _send(conn: Connection, reply: tuple) -> None:
    """The reply, with array buffers sent out of band (no pickled copy of a big array)."""
    buffers: list[pickle.PickleBuffer] = []
    header = pickle.dumps(reply, protocol=5, buffer_callback=buffers.append)
    conn.send_bytes(len(buffers).to_bytes(4, "little") + header)
    for buffer in buffers:
        conn.send_bytes(buffer.raw())


# The tasks. Each takes the untrusted bytes first and returns plain data only.


def decoded_image(data: bytes, max_side: int | None, allowance: int | None = None) -> dict:
    """``load_image`` as it is, then (optionally) the downscale a front end shows. With an
    ``allowance`` (the session's pixels left), a photo whose header declares more is not
    decoded: its declared size comes back instead."""
    from .images import downscaled, load_image

    if allowance is not None:
        from .images import header_size

        declared = header_size(data)
        if declared is not None and declared[0] * declared[1] > allowance:
            return {"over_allowance": declared}
    image = load_image(data)
    size = image.size
    image = downscaled(image, max_side)
    return {"pixels": np.asarray(image, np.uint8), "size": size}


def verified_model(data: bytes, hub: bool = False) -> dict:
    """The model loaded the usual way (budgets, safe mode), returned as Keras' own
    re-serialised config and its weights as arrays: what the parent needs to rebuild it
    without ever parsing the file itself. A worker without keras_hub (``hub`` False)
    answers ``{"needs_hub": True}`` for a file that uses KerasHub, without loading it:
    the parent sends it on to the KerasHub worker."""
    import keras

    from .model_bytes import keras_model_from_bytes
    from .presets import is_preset_archive, needs_hub, preset_from_archive

    if not hub and needs_hub(data):
        return {"needs_hub": True}
    try:
        model = preset_from_archive(data) if is_preset_archive(data) else keras_model_from_bytes(data)
        config = json.dumps(keras.saving.serialize_keras_object(model))
        weights = [np.asarray(weight) for weight in model.get_weights()]
        return {"config": config, "weights": weights}
    finally:
        keras.backend.clear_session()  # the next task starts from a clean Keras


# --- server side ---------------------------------------------------------------------


class _Died(Exception):
    """The worker did not answer: ``reason`` is "cpu", "wall", "memory", "crash" or "boot"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


_PLAIN = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class _PlainUnpickler(pickle.Unpickler):
    """Built-in containers, numbers and text, and NumPy arrays of numbers: nothing callable."""

    def find_class(self, module: str, name: str):
        if (module, name) in _PLAIN:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} may not cross the sandbox")


def _plain(value):
    """Refuse arrays of Python objects, which the unpickler above would never rebuild anyway."""
    if isinstance(value, np.ndarray) and value.dtype.hasobject:
        raise pickle.UnpicklingError("arrays of objects may not cross the sandbox")
    if isinstance(value, (list, tuple)):
        for item in value:
            _plain(item)
    if isinstance(value, dict):
        for item in value.values():
            _plain(item)
    return value


def _sandbox_ids() -> dict:
    """The worker's user and group for _drop_privileges, when the server runs as root."""
    import grp
    import pwd

    name = os.environ.get("GRADCAM_SANDBOX_USER", SANDBOX_USER).strip()
    if os.geteuid() != 0 or name in ("", "-"):
        return {}
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        _note_once(f"sandbox workers run as root: there is no user {name!r} (GRADCAM_SANDBOX_USER)")
        return {}
    try:
        gid = grp.getgrnam(name).gr_gid
    except KeyError:
        gid = user.pw_gid
    return {"GRADCAM_SANDBOX_UID": str(user.pw_uid), "GRADCAM_SANDBOX_GID": str(gid)}


_noted: set[str] = set()


def _note_once(note: str) -> None:
    if note not in _noted:
        _noted.add(note)
        _log.warning(note)


# Where each kind's own tasks live (decoded_image and verified_model here, decoded_video in video.py).
_PRODUCT_TASKS = {"image": (__name__,), "model": (__name__,), "hub": (__name__,),
                  "video": (__name__, f"{__package__}.video")}


class _Worker:
    def __init__(self, kind: str, memory_mb: int, modules: tuple[str, ...] = ()):
        self.kind = kind
        self.modules = frozenset(modules)  # what it can unpickle tasks from
        ours, theirs = socket.socketpair()
        env = {name: os.environ[name] for name in ENV_ALLOWED if name in os.environ}
        env.update(
            PYTHONPATH=os.pathsep.join(path for path in sys.path if path),
            MALLOC_ARENA_MAX="2",  # glibc reserves 64 MB of address space per thread otherwise
            OPENBLAS_NUM_THREADS="1",  # each BLAS thread reserves its buffers up front
            TF_CPP_MIN_LOG_LEVEL="3",
        )
        env.update(_sandbox_ids())
        code = _ISOLATE + "from gradcam.intake.sandbox import serve; serve()"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, str(theirs.fileno()), kind, str(memory_mb), ",".join(modules)],
            pass_fds=[theirs.fileno()], env=env,
            start_new_session=True,  # a Ctrl-C in the terminal is for the server, not its workers
        )
        theirs.close()
        self.conn = Connection(ours.detach())
        self.ready = False
        self.identity: dict = {}  # what the worker says it runs as, once ready

    def wait_ready(self) -> None:
        if not self.ready:
            if not self.conn.poll(BOOT_SECONDS):
                raise _Died("boot")
            try:
                message = self.conn.recv_bytes()
                self.ready = message.startswith(b"ready")
                self.identity = json.loads(message[5:] or b"{}") if self.ready else {}
            except (EOFError, OSError, ValueError):
                self.ready = False
            if not self.ready:
                raise _Died("boot")

    def call(self, function: Callable, data: bytes, args: tuple, budget: Budget, memory_mb: int):
        deadline = time.monotonic() + budget.wall_seconds
        # The reply is bounded too: a worker gone wrong must not make this process allocate.
        left = REPLY_BYTES[self.kind]
        try:
            self.conn.send_bytes(pickle.dumps((function, args, budget.cpu_seconds, memory_mb)))
            self.conn.send_bytes(data)
            header = self._receive(deadline, left)
            left -= len(header)
            buffers = []
            for _ in range(int.from_bytes(header[:4], "little")):
                buffers.append(self._receive(deadline, max(left, 0)))  # OSError when over
                left -= len(buffers[-1])
        except (EOFError, OSError):
            raise _Died(self._why_it_died()) from None
        return _plain(_PlainUnpickler(io.BytesIO(header[4:]), buffers=buffers).load())

    def _receive(self, deadline: float, most: int) -> bytes:
        if not self.conn.poll(max(deadline - time.monotonic(), 0)):
            self.stop()
            raise _Died("wall")
        return self.conn.recv_bytes(most)

    def _why_it_died(self) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "crash"
        if code == -signal.SIGXCPU:
            return "cpu"
        if code == -signal.SIGKILL:  # not us: the kernel's out-of-memory killer
            return "memory"
        return "crash"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.conn.close()


class Pool:
    """``size`` workers of one kind, started on first use (or by ``start``) and reused.

    Fair among sessions (see ``sandbox_session``): a free worker goes to the waiting caller
    whose session has the fewest tasks in workers, sessions with as many taking turns
    (the one served longest ago first), callers of one session in their order. So a session
    that floods the pool with uploads holds one worker while another session waits, and
    that other session is served after at most one task per busier session, not behind
    the whole flood; alone, a session may use every worker.
    """

    def __init__(self, kind: str, size: int, budget: Budget, error: type[ValueError]):
        self.kind, self.size, self.budget, self.error = kind, size, budget, error
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a worker freed, a caller gave up or was served
        # session -> its waiting callers, in arrival order; the sessions in turn order
        self._waiting: OrderedDict[object, deque] = OrderedDict()
        self._in_workers: Counter = Counter()  # session -> its tasks in workers now
        # Every module a task came from: workers import them before they give up root (see serve).
        # The product's own tasks are known from the start, so they never cost a restart.
        self._task_modules: tuple[str, ...] = _PRODUCT_TASKS.get(kind, ())
        atexit.register(self.close)

    def start(self) -> None:
        """Boot every worker now, without waiting, so the first upload does not pay for it."""
        with self._changed:
            while len(self._all) < self.size:
                self._idle.append(self._new())
            self._changed.notify_all()

    def _new(self) -> _Worker:
        worker = _Worker(self.kind, self.budget.memory_mb, self._task_modules)
        self._all.add(worker)
        return worker

    def _turn(self) -> tuple[object, object] | None:
        """(session, caller) that the next free worker goes to."""
        if not self._waiting:
            return None
        session = min(self._waiting, key=lambda s: self._in_workers[s])  # ties: the first in turn order
        return session, self._waiting[session][0]

    def _take(self, session) -> _Worker:
        caller = object()
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        with self._changed:
            self._waiting.setdefault(session, deque()).append(caller)
            while True:
                while self._idle and self._idle[-1].process.poll() is not None:
                    self._all.discard(self._idle.pop())  # died while idle (killed from outside): never hand it out
                free = bool(self._idle) or len(self._all) < self.size
                if free and self._turn() == (session, caller):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    # A hard cap: never more than ``size`` workers (extras were never retired, and
                    # 14 callers grew a pool of 2 to 6). The caller is told, not queued for ever.
                    self._leave(session, caller)
                    raise self.error(BUSY) from None
                self._changed.wait(left)
            self._leave(session, caller)
            self._in_workers[session] += 1
            return self._idle.pop() if self._idle else self._new()

    def _leave(self, session, caller) -> None:
        waiting = self._waiting[session]
        waiting.remove(caller)
        if not waiting:
            del self._waiting[session]
        self._changed.notify_all()

    def _done(self, session, worker: _Worker | None) -> None:
        """The session's task is over; ``worker`` goes back to the idle ones (None: it was replaced)."""
        with self._changed:
            if worker is not None:
                self._idle.append(worker)
            self._in_workers[session] -= 1
            if self._in_workers[session] <= 0:
                del self._in_workers[session]
            if session in self._waiting:
                self._waiting.move_to_end(session)  # served just now: the others come first
            self._changed.notify_all()

    def _forget(self, worker: _Worker) -> None:
        worker.stop()
        with self._lock:
            self._all.discard(worker)

    def _replace(self, worker: _Worker) -> None:
        self._forget(worker)
        with self._changed:
            self._idle.append(self._new())  # boots in the background while callers carry on
            self._changed.notify_all()

    def run(self, function: Callable, data: bytes, *args, memory_mb: int | None = None):
        """``function(data, *args)`` in a worker; its plain result, or ``self.error`` with one sentence.
        ``function`` must be importable by its module's name (not defined in ``__main__``);
        workers import that module before they give up root, so it may lie where only the
        server's user can read it (a new module costs one worker restart, once).

        ``memory_mb``: this task's memory budget, at most the pool's (the default).
        The caller's session is ``sandbox_session``'s key, else its thread.
        """
        session = _session.get()
        session = ("thread", threading.get_ident()) if session is None else ("session", session)
        module = function.__module__
        with self._lock:
            if module not in self._task_modules:
                self._task_modules += (module,)
        worker = self._take(session)
        kept = None
        try:
            if module not in worker.modules:
                # Started before this task's module was known: it could not import it once it gave
                # up root, so it is replaced (once per module) by a worker that imports it first.
                self._forget(worker)
                with self._lock:
                    worker = self._new()
            kind, value = self._call(worker, function, data, args, memory_mb)
            kept = worker
        finally:
            self._done(session, kept)
        if kind == "ok":
            return value
        if kind == "refused" and isinstance(value, str):
            raise self.error(valid_text(value[:500]))
        raise self.error(self._sentence("memory" if kind == "memory" else "crash", self._budget(memory_mb)))

    def _budget(self, memory_mb: int | None) -> Budget:
        budget = self.budget
        return Budget(min(memory_mb or budget.memory_mb, budget.memory_mb), budget.cpu_seconds, budget.wall_seconds)

    def _call(self, worker: _Worker, function: Callable, data: bytes, args: tuple, memory_mb: int | None):
        """(kind, value) from ``worker``; a worker that must not be used again is replaced
        here (and this raises), so a (kind, value) returned means the worker is idle again."""
        budget = self._budget(memory_mb)
        try:
            worker.wait_ready()
            if os.geteuid() == 0 and not worker.identity.get("dropped"):
                _note_once("sandbox workers run as root (they could not become "
                           f"{os.environ.get('GRADCAM_SANDBOX_USER', SANDBOX_USER)!r}: "
                           f"{worker.identity.get('why', 'not asked to')}); they are still limited and offline")
            kind, value = worker.call(function, data, args, budget, budget.memory_mb)
        except _Died as died:
            self._replace(worker)
            raise self.error(self._sentence(died.reason, budget)) from None
        except Exception:  # a reply that is not plain data: this worker is not to be trusted again
            self._replace(worker)
            raise self.error(self._sentence("crash", budget)) from None
        except BaseException:
            # The caller is being stopped mid-call (Streamlit ends a superseded run this way, or
            # Ctrl-C): the worker may still be busy, so it is replaced, never lost to the pool.
            self._replace(worker)
            raise
        if kind in ("memory", "failed"):
            self._replace(worker)  # a worker that ran out of memory may be left in any state
            raise self.error(self._sentence("memory" if kind == "memory" else "crash", budget))
        return kind, value

    @staticmethod
    def _sentence(reason: str, budget: Budget) -> str:
        if reason in ("cpu", "wall"):
            seconds = budget.cpu_seconds if reason == "cpu" else budget.wall_seconds
            unit = "second" if seconds == 1 else "seconds"
            return f"This file could not be read safely: it needed more than {seconds:g} {unit}."
        if reason == "memory":
            return f"This file could not be read safely: it needed more than {budget.memory_mb:,} MB of memory."
        if reason == "boot":
            return "The safe reader for uploaded files could not be started; please try again."
        return "This file could not be read safely: it crashed the reader."

    def close(self) -> None:
        with self._lock:
            workers, self._all, self._idle = list(self._all), set(), []
        for worker in workers:
            worker.stop()


_session: ContextVar[object] = ContextVar("gradcam_sandbox_session", default=None)


@contextlib.contextmanager
def sandbox_session(key):
    """Calls to the sandbox inside this block count as one session's (``key``: any hashable, e.g.
    a dashboard session's id) for the pools' fairness: one session's flood of uploads waits
    behind its own tasks, not in front of everyone else's. Without it, each thread is a session."""
    token = _session.set(key)
    try:
        yield
    finally:
        _session.reset(token)


_pools: dict[str, Pool] = {}
_pools_lock = threading.Lock()


def image_pool() -> Pool:
    with _pools_lock:
        if "image" not in _pools:
            _pools["image"] = Pool("image", 2, IMAGE_BUDGET, InvalidImageError)
        return _pools["image"]


def model_pool() -> Pool:
    with _pools_lock:
        if "model" not in _pools:
            _pools["model"] = Pool("model", 1, MODEL_BUDGET, ModelLoadError)
        return _pools["model"]


def hub_pool() -> Pool:
    """The KerasHub model worker: only files that use KerasHub come here (``verified_model_file``)."""
    with _pools_lock:
        if "hub" not in _pools:
            _pools["hub"] = Pool("hub", 1, MODEL_BUDGET, ModelLoadError)
        return _pools["hub"]


def load_image_safely(data, max_side: int | None = None) -> Image.Image:
    """``load_image`` in a sandboxed worker: the same RGB image (or InvalidImageError), but a
    file that crashes, hangs or exhausts the decoder costs a sentence, not the process.

    ``max_side``: downscale in the worker so the long side is at most this (fewer bytes
    come back; front ends show photos at DISPLAY_MAX_SIDE anyway).
    """
    from .images import ORIGINAL_SIZE, read_bytes

    raw = read_bytes(data)  # paths and uploads become bytes here, with load_image's own errors
    if not raw:
        raise InvalidImageError("The file is empty.")
    # Every decoded pixel counts against the session's budget (pixel_budget), whichever page decoded it.
    session = _session.get()
    ledger = None if session is None else session_ledger(session)
    allowance = None if ledger is None else ledger.allowance()
    if allowance == 0:
        raise PixelBudgetExceeded(ledger.refusal())
    result = image_pool().run(decoded_image, raw, max_side, allowance)
    if "over_allowance" in result:
        width, height = result["over_allowance"]
        raise PixelBudgetExceeded(ledger.refusal(int(width) * int(height)))
    if ledger is not None and isinstance(result.get("size"), tuple):
        width, height = result["size"]
        ledger.charge(int(width) * int(height))
    pixels, size = result["pixels"], result.get("size")
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3 or not isinstance(size, tuple) \
            or len(size) != 2 or not all(type(n) is int for n in size):
        raise InvalidImageError("This file could not be read safely: it crashed the reader.")
    image = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    image.info[ORIGINAL_SIZE] = size  # the photo's own size, before the worker's downscale
    return image


def video_pool() -> Pool:
    with _pools_lock:
        if "video" not in _pools:
            _pools["video"] = Pool("video", 1, VIDEO_BUDGET, InvalidVideoError)
        return _pools["video"]


def load_video_safely(data, max_side: int | None = None):
    """A video (a path, bytes or a file-like) decoded in a sandboxed worker within the budgets of
    ``gradcam.intake.video``: a ``Video`` of RGB frames at most ``max_side`` on their long side
    (default 640), or InvalidVideoError with one sentence."""
    from .images import read_bytes
    from .video import DEFAULT_MAX_SIDE, MAX_VIDEO_BYTES, decoded_video, video_from_reply

    max_side = int(max_side or DEFAULT_MAX_SIDE)
    if not 16 <= max_side <= DEFAULT_MAX_SIDE:
        raise ValueError(f"max_side must be between 16 and {DEFAULT_MAX_SIDE}.")
    if isinstance(data, (str, os.PathLike)) and os.path.getsize(data) > MAX_VIDEO_BYTES:
        raise InvalidVideoError(f"This video is larger than {MAX_VIDEO_BYTES // 2**20} MB.")
    try:
        raw = read_bytes(data)
    except InvalidImageError as error:  # its sentences speak of files, not of images
        raise InvalidVideoError(str(error)) from None
    if not raw:
        raise InvalidVideoError("The file is empty.")
    if len(raw) > MAX_VIDEO_BYTES:
        raise InvalidVideoError(f"This video is larger than {MAX_VIDEO_BYTES // 2**20} MB.")
    return video_from_reply(video_pool().run(decoded_video, raw, max_side))


def model_memory_mb(file_bytes: int) -> int:
    """A model file's memory budget grows with the file: reading it holds the bytes, h5py's
    buffers, Keras' variables and the arrays sent back, about four times the file. A small
    file that asks for gigabytes (a damaged .h5 header can) is refused at 512 MB."""
    return min(MODEL_BUDGET.memory_mb, 512 + 5 * math.ceil(file_bytes / 2**20))


def verified_model_file(data: bytes) -> tuple[str, list[np.ndarray]]:
    """A model file read in the sandbox: (Keras' config JSON, weights), or ModelLoadError.
    The plain model worker looks first; a file that uses KerasHub goes on to the KerasHub
    worker (booted by the first such file), so only those files pay for importing keras_hub."""
    memory_mb = model_memory_mb(len(data))
    result = model_pool().run(verified_model, data, memory_mb=memory_mb)
    if isinstance(result, dict) and result.get("needs_hub") is True:
        import importlib.util

        from .model_bytes import HUB_MISSING

        if importlib.util.find_spec("keras_hub") is None:
            raise ModelLoadError(HUB_MISSING)
        result = hub_pool().run(verified_model, data, True, memory_mb=memory_mb)
    config, weights = result.get("config"), result.get("weights")
    if not isinstance(config, str) or not isinstance(weights, list) \
            or not all(isinstance(w, np.ndarray) for w in weights):
        raise ModelLoadError("This file could not be read safely: it crashed the reader.")
    return config, weights


def _tiny_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, "PNG")
    return buffer.getvalue()


_TINY_PNG = _tiny_png()


def _tiny_video() -> bytes:
    """Two 16 x 16 frames of H.264 in MP4, the kind of file the video worker reads most."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        for _ in range(2):
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()
