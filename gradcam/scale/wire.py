"""The explanation service's wire format and its client (standard library only).

One request: POST the photo's bytes to the service's URL, with the query
parameters ``model`` (a built-in model's name), ``layer``, ``method`` and either
``targets`` (class indices, comma-separated) or ``top`` (how many of the model's
own top classes). The answer is JSON: the top-5 predictions and, per class, its
layer-resolution map, sent as its peak (a float) and the map divided by its peak
in float16 (little-endian, base64). That is 98 bytes for a 7x7 map, encoded in
microseconds; a 16-bit PNG is larger for small maps and ~100x slower to encode
(``python -m bench --encoding``). A request the engine refuses answers
HTTP 400 with ``{"error": sentence}``.

The server is ``gradcam.scale.serve`` (Ray Serve); the dashboard uses ``explain_remote``
when ``GRADCAM_BACKEND`` is set. Neither side imports Streamlit.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import numpy as np

from ..engine.cam import Explanation, Prediction, heatmap

TIMEOUT_S = 120  # a cold replica loads its model first


@dataclass(frozen=True)
class ServedMap:
    target: int
    label: str
    probability: float
    raw: np.ndarray  # (h, w) float32 at layer resolution, >= 0
    no_positive_evidence: bool


@dataclass(frozen=True)
class Served:
    predictions: list[Prediction]  # top-5
    maps: list[ServedMap]  # one per explained class, in the order asked
    layer: str
    method: str

    def explanations(self, size: tuple[int, int]) -> list[Explanation]:
        """The served maps as the engine's own ``Explanation``s for a photo of ``size``
        (width, height): the heatmap scaled as the engine scales it. The service sends
        only the map after ReLU, so ``before_relu`` is that map and there are no channel
        weights."""
        return [Explanation(heatmap=heatmap(m.raw, size, self.method), raw=m.raw, target=m.target, label=m.label,
                            probability=m.probability, layer=self.layer, method=self.method,
                            predictions=self.predictions, no_positive_evidence=m.no_positive_evidence,
                            channel_weights=np.zeros(0, np.float32), before_relu=m.raw)
                for m in self.maps]


# --- the wire format ---------------------------------------------------------------


def encode_map(raw: np.ndarray) -> dict:
    peak = float(raw.max()) if raw.size else 0.0
    scaled = raw / peak if peak > 0 else np.zeros_like(raw)
    return {"shape": list(raw.shape), "peak": peak,
            "float16": base64.b64encode(scaled.astype("<f2").tobytes()).decode("ascii")}


def decode_map(encoded: dict) -> np.ndarray:
    scaled = np.frombuffer(base64.b64decode(encoded["float16"]), "<f2").reshape(encoded["shape"])
    return scaled.astype(np.float32) * np.float32(encoded["peak"])


def response(explanations: list[Explanation]) -> dict:
    """The JSON answer for one photo's explanations (from ``explain_many`` or ``explain_batch``)."""
    first = explanations[0]
    return {
        "layer": first.layer,
        "method": first.method,
        "predictions": [{"index": p.index, "label": p.label, "probability": p.probability, "logit": p.logit}
                        for p in first.predictions],
        "maps": [{"target": e.target, "label": e.label, "probability": e.probability,
                  "no_positive_evidence": e.no_positive_evidence, **encode_map(e.raw)} for e in explanations],
    }


def parse_response(answer: dict) -> Served:
    return Served(
        predictions=[Prediction(int(p["index"]), p["label"], float(p["probability"]), float(p["logit"]))
                     for p in answer["predictions"]],
        maps=[ServedMap(int(m["target"]), m["label"], float(m["probability"]), decode_map(m),
                        bool(m["no_positive_evidence"])) for m in answer["maps"]],
        layer=answer["layer"],
        method=answer["method"],
    )


def query(model: str, layer: str | None, method: str, targets=None, top: int = 5) -> dict:
    params = {"model": model, "method": method}
    if layer:
        params["layer"] = layer
    if targets is None:
        params["top"] = str(int(top))
    else:
        params["targets"] = ",".join(str(int(t)) for t in targets)
    return params


# --- the client ----------------------------------------------------------------------


def explain_remote(url: str, image_bytes: bytes, model: str, layer: str | None = None, method: str = "gradcam",
                   targets=None, top: int = 5) -> Served:
    """Ask the service at ``url`` for one photo's maps. Raises ValueError with one
    sentence when the service refuses the request or cannot be reached."""
    address = url.rstrip("/") + "/?" + urllib.parse.urlencode(query(model, layer, method, targets, top))
    headers = {"Content-Type": "application/octet-stream"}
    token = os.environ.get("GRADCAM_SERVICE_TOKEN", "").strip()
    if token:  # the service refuses requests without it (HTTP 401); send it over TLS beyond localhost
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(address, data=image_bytes, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            return parse_response(json.loads(answer.read()))
    except urllib.error.HTTPError as error:
        try:
            sentence = json.loads(error.read())["error"]
        except (ValueError, KeyError, TypeError):
            sentence = f"The explanation service at {url} answered HTTP {error.code}."
        raise ValueError(sentence) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ValueError(f"The explanation service at {url} cannot be reached ({reason}).") from None
