"""A generation as plain data: PNG data URLs of each step's x_t, ε̂ and x̂₀, the reader's verdict, the timings."""

from __future__ import annotations

import base64
import time
from typing import Any

import numpy as np
import torch

from ..activations.reduce import encode_png
from . import reader
from .model import shipped
from .sampling import Generation, generate, noise_picture, one_thread, to_uint8


def data_url(picture: np.ndarray) -> str:
    """uint8 [H, W, 3] -> a PNG data URL."""
    return "data:image/png;base64," + base64.b64encode(encode_png(picture.astype(np.float32) / 255.0)).decode()


def reading_dict(picture: np.ndarray) -> dict[str, Any]:
    seen = reader.read(picture)
    objects = [{"colour": o.colour, "shape": o.shape, "size": o.size, "position": o.position} for o in seen.objects]
    if objects:
        words = " and ".join(f"a {o['size']} {o['colour']} {o['shape']} at {o['position']}" for o in objects)
    else:
        words = "no object"
    return {"ground": seen.ground, "objects": objects, "text": f"{words} on a {seen.ground} ground"}


def _array(x: torch.Tensor) -> str:
    return base64.b64encode(x[0].to(torch.float32).numpy().astype("<f4").tobytes()).decode()


def step_input(prompt: str, gen: dict[str, Any]) -> tuple[torch.Tensor, int]:
    """(x_t, t) at step `gen["step"]` of the generation `gen` describes: the loop is run again up to there."""
    with one_thread():
        out = generate(shipped().model, prompt, seed=gen["seed"], steps=gen["steps"], guidance=gen["guidance"],
                       sampler=gen["sampler"], negative=gen["negative"], stop_after=gen["step"])  # fmt: skip
    step = out.steps[gen["step"]]
    return step.x_t, step.t


def warm() -> None:
    """Load the shipped twin and run one short generation, so the next one pays only for its own steps (the
    first call of each op, the schedulers' import and the weights' read happen here)."""
    with one_thread():
        generate(shipped().model, "", seed=0, steps=2, guidance=3.0)


def generation_dict(job: dict[str, Any]) -> dict[str, Any]:
    """Run one generation of the shipped twin for a checked request (`GenerateRequest`'s fields); with
    interventions, the knob run beside its baseline (`knobs.report`)."""
    if job.get("interventions"):
        from .knobs.report import experiment_dict

        return experiment_dict(job)
    started = time.perf_counter()
    model = shipped().model
    with one_thread():
        gen = generate(model, job["prompt"], seed=job["seed"], steps=job["steps"], guidance=job["guidance"],
                       sampler=job["sampler"], negative=job["negative"])  # fmt: skip
    sampled = time.perf_counter()
    return render(gen, job, {"sampling_ms": round((sampled - started) * 1e3, 1)}, started)


def render(gen: Generation, job: dict[str, Any], timings: dict[str, float], started: float) -> dict[str, Any]:
    """A generation as the response's fields: the picture, each step's tensors as asked, the reading."""
    model = shipped().model
    wanted = set(job["return"])
    per_step = []
    for step in gen.steps:
        tensors = {"x_t": step.x_t, "eps": step.eps, "x0": step.x0}
        row: dict[str, Any] = {"index": step.index, "t": step.t}
        for name in wanted:
            row[name] = data_url(noise_picture(tensors[name]) if name == "eps" else to_uint8(tensors[name]))
        if job["arrays"]:
            row["arrays"] = {name: _array(tensors[name]) for name in sorted(wanted)}
        per_step.append(row)
    picture = to_uint8(gen.image)
    return {
        "prompt": job["prompt"],
        "negative": job["negative"],
        "seed": job["seed"],
        "steps": job["steps"],
        "guidance": job["guidance"],
        "sampler": job["sampler"],
        "tokens": model.tokenizer.tokens_of(job["prompt"]),
        "image": data_url(picture),
        "reading": reading_dict(picture),
        "unet_calls": gen.unet_calls,
        "per_step": per_step,
        "timings": {**timings, "total_ms": round((time.perf_counter() - started) * 1e3, 1)},
    }
