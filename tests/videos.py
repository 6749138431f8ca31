"""Videos the tests build: a photo's object moving across a plain background, and hostile files."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from helpers import photo


def write_mp4(path, frames, fps: int = 12, faststart: bool = True) -> Path:
    """RGB arrays as H.264 in MP4 at ``path``."""
    size = frames[0].shape[1::-1]
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"} if faststart else {}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        out.mux(stream.encode())
    return Path(path)


def moving_object(name: str, crop: tuple[int, int, int, int], object_size: tuple[int, int],
                  frame_size: tuple[int, int], frames: int, background, vertical: bool = False):
    """A scikit-image photo's object (``crop`` of it, scaled to ``object_size``) sliding across a plain
    frame, edge to edge: (frames as arrays, the object's box (x0, y0, x1, y1) in each)."""
    thing = photo(name).crop(crop).resize(object_size, Image.LANCZOS)
    width, height = frame_size
    pictures, boxes = [], []
    for i in range(frames):
        if vertical:
            x, y = (width - thing.width) // 2, round(i * (height - thing.height) / (frames - 1))
        else:
            x, y = round(i * (width - thing.width) / (frames - 1)), (height - thing.height) // 2
        canvas = Image.new("RGB", frame_size, background)
        canvas.paste(thing, (x, y))
        pictures.append(np.asarray(canvas))
        boxes.append((x, y, x + thing.width, y + thing.height))
    return pictures, boxes


def moving_cup(frames: int = 24):
    """The espresso cup (scikit-image's coffee, also samples/coffee.jpg) sliding left to right over a grey 560 x 320 frame."""
    return moving_object("coffee", (60, 0, 490, 400), (240, 223), (560, 320), frames, (200, 196, 188))


def peak(heatmap: np.ndarray) -> tuple[int, int]:
    y, x = np.unravel_index(int(heatmap.argmax()), heatmap.shape)
    return int(x), int(y)


def inside(point, box) -> bool:
    return box[0] <= point[0] < box[2] and box[1] <= point[1] < box[3]


# --- hostile files ------------------------------------------------------------------


def _encoded_packets(size: tuple[int, int], frames: int, fps: int = 30):
    """(an MP4 of ``frames`` black frames in H.264, its packets' bytes in order)."""
    buffer = io.BytesIO()
    packets = []
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        black = av.VideoFrame.from_ndarray(np.zeros((size[1], size[0], 3), np.uint8), format="rgb24")
        for _ in range(frames):
            packets.extend(stream.encode(black))
        packets.extend(stream.encode())
        for packet in packets:
            out.mux(packet)
    # Read back from the file: the muxer rewrites the encoder's packets into MP4's own framing.
    with av.open(io.BytesIO(buffer.getvalue())) as back:
        payloads = [bytes(packet) for packet in back.demux(back.streams.video[0]) if packet.size]
    return buffer.getvalue(), payloads


def huge_frames() -> bytes:
    """One black 8192 x 4320 frame (35 megapixels, H.264's largest level) in a file of a few kB."""
    return _encoded_packets((8192, 4320), 1)[0]


def codec_bomb(frames: int = 240) -> bytes:
    """A few kB that decode to ``frames`` 4K frames (2 gigapixels): one black key frame and one
    empty "nothing changed" frame, muxed again and again with rising time stamps."""
    original, (key, skip) = _encoded_packets((3840, 2160), 2)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream_from_template(av.open(io.BytesIO(original)).streams.video[0])
        for i in range(frames):
            packet = av.Packet(key if i == 0 else skip)
            packet.stream = stream
            packet.pts = packet.dts = i * 512
            packet.time_base = Fraction(1, 15360)
            packet.is_keyframe = i == 0
            out.mux(packet)
    return buffer.getvalue()


def hours_long() -> bytes:
    """Two frames three hours apart: a file whose time stamps say it lasts three hours."""
    buffer = io.BytesIO()
    original, packets = _encoded_packets((32, 32), 2, fps=10)
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream_from_template(av.open(io.BytesIO(original)).streams.video[0])
        for i, source in enumerate(packets):
            packet = av.Packet(source)
            packet.stream = stream
            packet.pts = packet.dts = i * 3 * 3600 * 10
            packet.time_base = Fraction(1, 10)
            packet.is_keyframe = i == 0
            out.mux(packet)
    return buffer.getvalue()


def write_y4m(path, photos, size: tuple[int, int] = (640, 480), fps: int = 15, frames_each: int = 15) -> Path:
    """A Y4M file for Chromium's fake camera (--use-file-for-fake-video-capture): each photo
    held for ``frames_each`` frames. 4:2:0 with JPEG's full-range YCbCr (C420jpeg): Chromium
    refuses a 4:4:4 file ("NotFoundError: Requested device not found")."""
    width, height = size
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for picture in photos:
            y, cb, cr = picture.convert("RGB").resize(size, Image.BICUBIC).convert("YCbCr").split()
            half = (width // 2, height // 2)
            planes = y.tobytes() + cb.resize(half, Image.BOX).tobytes() + cr.resize(half, Image.BOX).tobytes()
            for _ in range(frames_each):
                out.write(b"FRAME\n" + planes)
    return Path(path)
