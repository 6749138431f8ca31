"""The engine as a Ray Serve application: ``serve run gradcam.scale.serve:app``.

Each replica loads built-in models on first use and answers HTTP requests in the
wire format of ``gradcam.scale.wire`` (photo bytes in; predictions and
layer-resolution maps out). ``@serve.batch`` groups the requests that arrive
together into one ``explain_batch`` call per (model, layer, method), and replicas
autoscale with the number of requests in flight. Point the dashboard at it with
``GRADCAM_BACKEND=http://host:8000``.

Needs Ray (``pip install -r requirements-ray.txt``); nothing else imports it.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ray import serve  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402

MAX_BATCH = 16  # requests grouped into one engine call at most
MAX_PHOTO_BYTES = 50 * 1024 * 1024
# A photo is decoded in the sandbox and downscaled there: a 160 kB PNG can declare 7000 x 7000
# (~190 MB per queued request); the network sees 224-260 px, so 1024 px loses nothing.
# The same bound as the dataset audit's (gradcam.intake.images.EXPLAIN_MAX_SIDE).
from gradcam.intake.images import EXPLAIN_MAX_SIDE as MAX_SIDE  # noqa: E402
MAX_MAPS = 10  # classes explained per request (each is a map through the whole network)
# Score-CAM's channels per request, as the dashboard (every channel took 21 s on Lite0, ~1.7 min on ResNet50).
CHANNEL_BUDGET = 32
REQUEST_SECONDS = 60.0  # a request still running then is stopped (perturbation methods check between batches)
TOKEN_ENV = "GRADCAM_SERVICE_TOKEN"
# Serve's HTTP server (uvicorn in Ray's proxy) closes a connection this long after its last answer;
# Ray's default is 90 s. (One that never finishes a request is the door's job: gradcam.scale.door.)
KEEP_ALIVE_SECONDS = 5
NO_TOKEN = ("GRADCAM_SERVICE_TOKEN is not set: this explanation service answers ANYONE who reaches its port, so it "
            "answers this machine (loopback) only. Set the token to serve other machines.")
_log = logging.getLogger("gradcam.serve")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or "localhost") is this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def token_set() -> bool:
    return bool(os.environ.get(TOKEN_ENV, "").strip())


@dataclass(frozen=True)
class Job:
    image: object  # a decoded PIL image
    model: str
    layer: str | None
    method: str
    targets: tuple | None  # class indices, or None for the model's own top classes
    top: int

    def group(self) -> tuple:
        # One batched engine call per group: own-top requests need the same count.
        return self.model, self.layer, self.method, self.targets is None, self.top if self.targets is None else 0


class Refused(ValueError):
    """A request refused before any work: ``status`` is its HTTP status code."""

    def __init__(self, sentence: str, status: int):
        super().__init__(sentence)
        self.status = status


def authorized(headers) -> bool:
    """True when no token is set, or the request carries ``Authorization: Bearer <token>``
    (compared in constant time, so the answer's timing says nothing about the token)."""
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        return True
    given = headers.get("authorization", "")
    return hmac.compare_digest(given.encode("utf-8", "replace"), f"Bearer {token}".encode("utf-8", "replace"))


async def read_body(request: Request) -> bytes:
    """The body, refused by its declared Content-Length (413) before reading, and read with a cap
    (a chunked body has no length to trust)."""
    declared = request.headers.get("content-length", "")
    too_large = Refused(f"The photo is larger than {MAX_PHOTO_BYTES // 2**20} MB.", 413)
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_PHOTO_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_PHOTO_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _job(body: bytes, params) -> Job:
    import gradcam

    if len(body) > MAX_PHOTO_BYTES:
        raise Refused(f"The photo is larger than {MAX_PHOTO_BYTES // 2**20} MB.", 413)
    model = params.get("model", gradcam.DEFAULT_MODEL)
    if model not in dict(gradcam.available_models()):
        raise ValueError(f'The service explains with built-in models only; "{model}" is not one.')
    method = params.get("method", "gradcam")
    if method not in gradcam.METHODS:
        raise ValueError(f'Unknown method "{method}"; choose one of: {", ".join(gradcam.METHODS)}.')
    numbers = [*(params["targets"].split(",") if params.get("targets") else ()), params.get("top", "5")]
    if not all(n.isascii() and n.isdigit() and len(n) <= 9 for n in numbers):
        raise ValueError("targets must be class indices separated by commas, and top a whole number.")
    targets = tuple(int(t) for t in numbers[:-1]) or None
    top = int(numbers[-1])
    if not 1 <= top <= MAX_MAPS or (targets is not None and not 1 <= len(targets) <= MAX_MAPS):
        raise ValueError(f"Ask for between 1 and {MAX_MAPS} classes.")
    if not body:
        raise ValueError("The request has no photo.")
    # Decoded in a sandboxed worker, downscaled there: a decoder crash or a bomb costs a sentence.
    image = gradcam.load_image_safely(body, max_side=MAX_SIDE)
    return Job(image, model, params.get("layer") or None, method, targets, top)


@serve.deployment(
    # A fraction of a CPU each, so Serve's proxy and controller keep a slot on a
    # 2-CPU machine; TensorFlow in a replica still uses the cores it finds.
    ray_actor_options={"num_cpus": 0.5},
    autoscaling_config={"min_replicas": 1, "max_replicas": 8, "target_ongoing_requests": MAX_BATCH // 2},
    max_ongoing_requests=2 * MAX_BATCH,
    # Beyond this many waiting requests a caller gets HTTP 503 at once, rather than a queue without end.
    max_queued_requests=4 * MAX_BATCH,
)
class Explainer:
    def __init__(self):
        self._models = {}
        if not token_set():  # said at every replica's start, in its log and the driver's console
            _log.warning(NO_TOKEN)

    def _model(self, name: str):
        import gradcam

        if name not in self._models:
            self._models[name] = gradcam.load_model(name)
        return self._models[name]

    def _run(self, jobs: list[Job]) -> list[dict]:
        """Answers for jobs, in order: one batched engine call per group."""
        import gradcam
        from gradcam.scale.wire import response

        from gradcam.engine.graph import resolve_layer
        from gradcam.engine.targets import target_index

        answers: list[dict] = [{} for _ in jobs]
        groups: dict[tuple, list[int]] = {}
        for i, job in enumerate(jobs):
            try:  # checked one by one, so one request's unknown layer or class fails only that request
                model = self._model(job.model)
                resolve_layer(model, job.layer)
                for target in job.targets or ():
                    target_index(model, target)
            except ValueError as error:
                answers[i] = {"error": str(error)}
                continue
            groups.setdefault(job.group(), []).append(i)
        for (model_name, layer, method, own_top, top), members in groups.items():
            targets = None if own_top else [list(jobs[i].targets) for i in members]
            # Budgets per request: Score-CAM's channels, and a time limit that stops a long method.
            options = {"max_channels": CHANNEL_BUDGET} if gradcam.METHODS[method].channel_budget else {}
            if gradcam.METHODS[method].slow:
                options["stop"] = _Deadline(REQUEST_SECONDS)
            try:  # one group's failure (a refused cost, a stopped method) fails that group alone
                explained = gradcam.explain_batch(self._model(model_name), [jobs[i].image for i in members],
                                                  targets, layer, method, top=top or 1, **options)
            except (ValueError, gradcam.ExplanationStopped) as error:
                sentence = (f"The request took longer than {REQUEST_SECONDS:g} seconds and was stopped."
                            if isinstance(error, gradcam.ExplanationStopped) else str(error))
                for i in members:
                    answers[i] = {"error": sentence}
                continue
            except Exception:
                for i in members:
                    answers[i] = {"error": "The service could not explain this photo."}
                continue
            for i, explanations in zip(members, explained):
                # How many requests shared this engine call: the load test reports it.
                answers[i] = {**response(explanations), "batched_with": len(members)}
        return answers

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=0.01)
    async def explain(self, jobs: list[Job]) -> list[dict]:
        # In a thread: the replica's event loop keeps accepting (and batching) requests.
        return await asyncio.to_thread(self._run, jobs)

    async def __call__(self, request: Request) -> JSONResponse:
        if not token_set() and not is_loopback(request.client.host if request.client else ""):
            # Bound beyond loopback without a token (a config file's host: 0.0.0.0): refuse the world.
            return JSONResponse({"error": "This explanation service has no token, so it answers this machine "
                                          "only."}, status_code=403)
        if not authorized(request.headers):
            return JSONResponse({"error": "This explanation service needs its token."}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        try:
            body = await read_body(request)
            # Off the event loop: the sandbox's decode takes a while, and the loop keeps batching meanwhile.
            job = await asyncio.to_thread(_job, body, request.query_params)
        except ValueError as error:  # a broken photo, an unknown model or method: one sentence
            return JSONResponse({"error": str(error)}, status_code=getattr(error, "status", 400))
        answer = await self.explain(job)
        return JSONResponse(answer, status_code=400 if "error" in answer else 200)


def http_options(port: int = 8000, host: str = "127.0.0.1") -> dict:
    """Serve's HTTP proxy for this app: loopback unless told otherwise (and only with a token),
    a time limit per request, so one heavy request cannot hold its caller (and the proxy's slot)
    for ever, and idle connections closed KEEP_ALIVE_SECONDS after their last answer."""
    check_bind(host)
    return {"host": host, "port": port, "request_timeout_s": REQUEST_SECONDS + 30,
            "keep_alive_timeout_s": KEEP_ALIVE_SECONDS}


def check_bind(host: str) -> None:
    """Refuse to listen beyond loopback without a token (ValueError); without one on loopback,
    say loudly that anyone on this machine may use the service."""
    if token_set():
        return
    if not is_loopback(host):
        raise ValueError(f"Refusing to listen on {host} without a token: set GRADCAM_SERVICE_TOKEN (and put a TLS "
                         "proxy in front), or listen on 127.0.0.1.")
    _log.warning(NO_TOKEN)


class _Deadline:
    """``is_set()`` once ``seconds`` have passed: the engine's ``stop`` for a time limit."""

    def __init__(self, seconds: float):
        import time

        self._clock = time.monotonic
        self._end = time.monotonic() + seconds

    def is_set(self) -> bool:
        return self._clock() >= self._end


app = Explainer.bind()
