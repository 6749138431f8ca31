"""Tasks that fail on purpose inside a sandbox worker, one way each.

They prove each failure mode of gradcam.intake.sandbox independently of what any real
decoder happens to do with a damaged file. Kept apart from the tests (and free
of heavy imports) because the worker imports this module by name.
"""

import ctypes
import os
import time


def segfault(data: bytes):
    """Read address 0: SIGSEGV, as h5py does on some damaged files."""
    return ctypes.string_at(0)


def spin(data: bytes):
    """Burn CPU forever."""
    while True:
        pass


def sleep(data: bytes):
    """Block forever without using CPU (as a read from a FIFO would)."""
    time.sleep(10**6)


def allocate(data: bytes):
    """Ask for 8 GB, then touch it."""
    block = bytearray(8 * 2**30)
    return len(block)


def echo_length(data: bytes):
    return {"length": len(data), "pid": os.getpid()}


def not_plain_data(data: bytes):
    """A reply the server must refuse to rebuild: a callable, which unpickling would import."""
    return {"callable": os.system}


def spin_for(data: bytes, cpu_seconds: float):
    """Burn this much CPU time, then answer."""
    end = time.process_time() + cpu_seconds
    while time.process_time() < end:
        pass
    return {"pid": os.getpid()}


def too_big_reply(data: bytes):
    """A reply larger than any image: the server refuses to receive it."""
    return {"pixels": bytes(210 * 2**20)}


def surroundings(data: bytes):
    """What a worker can see: its environment's names and its network interfaces."""
    import socket

    return {"env": sorted(os.environ), "interfaces": [name for _, name in socket.if_nameindex()]}


def sleep_for(data: bytes, seconds: float):
    """Hold the worker this long (a slow hostile file), then answer."""
    began = time.time()
    time.sleep(seconds)
    return {"length": len(data), "pid": os.getpid(), "began": began, "ended": time.time()}


def who(data: bytes, path: str):
    """Who the worker runs as, and whether it may read a file only the server's user may."""
    try:
        with open(path, "rb") as handle:
            readable = bool(handle.read(1))
    except PermissionError:
        readable = False
    return {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "reads": readable}


def model_read_and_keras_hub(data: bytes, hub: bool = False):
    """The model worker's own task on ``data``, then whether this worker has imported keras_hub."""
    import sys

    from gradcam.intake.sandbox import verified_model

    reply = verified_model(data, hub)
    return {"needs_hub": reply.get("needs_hub") is True, "read": "config" in reply,
            "keras_hub": "keras_hub" in sys.modules}
