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
import os
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ray import serve  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402

MAX_BATCH = 16  # requests grouped into one engine call at most
MAX_PHOTO_BYTES = 50 * 1024 * 1024


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


def _job(body: bytes, params) -> Job:
    import gradcam

    if len(body) > MAX_PHOTO_BYTES:
        raise ValueError(f"The photo is larger than {MAX_PHOTO_BYTES // 2**20} MB.")
    model = params.get("model", gradcam.DEFAULT_MODEL)
    if model not in dict(gradcam.available_models()):
        raise ValueError(f'The service explains with built-in models only; "{model}" is not one.')
    method = params.get("method", "gradcam")
    if method not in gradcam.METHODS:
        raise ValueError(f'Unknown method "{method}"; choose one of: {", ".join(gradcam.METHODS)}.')
    try:
        targets = tuple(int(t) for t in params["targets"].split(",")) if params.get("targets") else None
        top = int(params.get("top", 5))
    except ValueError:
        raise ValueError("targets must be class indices separated by commas, and top a whole number.") from None
    if not 1 <= top <= 1000 or (targets is not None and not 1 <= len(targets) <= 1000):
        raise ValueError("Ask for between 1 and 1000 classes.")
    return Job(gradcam.load_image(body), model, params.get("layer") or None, method, targets, top)


@serve.deployment(
    # A fraction of a CPU each, so Serve's proxy and controller keep a slot on a
    # 2-CPU machine; TensorFlow in a replica still uses the cores it finds.
    ray_actor_options={"num_cpus": 0.5},
    autoscaling_config={"min_replicas": 1, "max_replicas": 8, "target_ongoing_requests": MAX_BATCH // 2},
    max_ongoing_requests=2 * MAX_BATCH,
)
class Explainer:
    def __init__(self):
        self._models = {}

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
            explained = gradcam.explain_batch(self._model(model_name), [jobs[i].image for i in members], targets,
                                              layer, method, top=top or 1)
            for i, explanations in zip(members, explained):
                # How many requests shared this engine call: the load test reports it.
                answers[i] = {**response(explanations), "batched_with": len(members)}
        return answers

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=0.01)
    async def explain(self, jobs: list[Job]) -> list[dict]:
        # In a thread: the replica's event loop keeps accepting (and batching) requests.
        return await asyncio.to_thread(self._run, jobs)

    async def __call__(self, request: Request) -> JSONResponse:
        try:
            job = _job(await request.body(), request.query_params)
        except ValueError as error:  # a broken photo, an unknown model or method: one sentence
            return JSONResponse({"error": str(error)}, status_code=400)
        answer = await self.explain(job)
        return JSONResponse(answer, status_code=400 if "error" in answer else 200)


app = Explainer.bind()
