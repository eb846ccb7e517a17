"""The twin's speed on this CPU, medians side by side in one run (shipped weights, one torch thread as served).

- A 50-step DDIM generation with classifier-free guidance (two UNet rows a step): target <= 1 s.
- The same 50 steps with the per-step x_t, eps and x0 turned into PNGs, as POST /api/generate answers.
- One step of the loop captured at every block output (statistics and previews, `@outputs`): target <= 100 ms,
  beside the plain UNet call it wraps.
- A fresh server: seconds from `serve` to GET /api/twin answering and to the twin loaded in the background, then
  the first generated picture: <= 1.5 s.

Run: `python -m bench.twin_bench`; `run()` returns the rows for `python -m bench`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from bench.common import machine, median_time, table

CAPTION = "a large red circle at the top left on a black background"


def _generation_rows() -> list[tuple[str, str, str]]:
    import torch

    from sdunet_core.activations.session import CaptureSpec, Explorer
    from sdunet_core.twin import generate, shipped
    from sdunet_core.twin.report import generation_dict
    from sdunet_core.twin.sampling import one_thread

    model = shipped().model
    job = {"prompt": CAPTION, "negative": "", "seed": 0, "steps": 50, "guidance": 3.0, "sampler": "ddim",
           "return": ["x_t", "eps", "x0"], "arrays": False}  # fmt: skip
    with one_thread():
        loop = median_time(lambda: generate(model, CAPTION, steps=50, guidance=3.0, keep_steps=False), repeats=7)
        answer = median_time(lambda: generation_dict(job), repeats=5)
        explorer = Explorer.twin()
        gen = generate(model, CAPTION, steps=50, guidance=3.0)
        step = gen.steps[25]
        spec = CaptureSpec(["@outputs"], step.t, prompt=CAPTION, latent=step.x_t)
        explorer.run(spec)
        captured = median_time(lambda: explorer.run(spec), repeats=9)
        ctx = model.context([CAPTION])
        t = torch.tensor([step.t])
        plain = median_time(lambda: model.unet(step.x_t, t, ctx), repeats=9)
    return [
        ("50-step DDIM generation, guidance 3 (UNet x 100 rows)", f"{loop * 1e3:.0f} ms", "<= 1000 ms"),
        ("the same with every step's x_t / eps / x0 as PNG (POST /api/generate's work)", f"{answer * 1e3:.0f} ms", "-"),
        ("one loop step captured at every block output (@outputs)", f"{captured * 1e3:.1f} ms", "<= 100 ms"),
        ("the same UNet call without hooks", f"{plain * 1e3:.1f} ms", "-"),
    ]


def _start_rows() -> list[tuple[str, str, str]]:
    from tests.harness import free_port

    port = free_port()
    started = time.monotonic()
    # The server as `serve` runs it: the twin is loaded in the background at start (SDUNET_WARM_TWIN on).
    env = {**os.environ, "SDUNET_WARM_TWIN": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        info_s = loaded_s = None
        with httpx.Client(timeout=120) as http:
            while loaded_s is None and time.monotonic() - started < 180:
                try:
                    r = http.get(f"{url}/api/twin")
                    if r.status_code == 200:
                        info_s = info_s or time.monotonic() - started
                        if r.json()["loaded"]:
                            loaded_s = time.monotonic() - started
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            asked = time.monotonic()
            r = http.post(f"{url}/api/generate", json={"prompt": CAPTION, "steps": 50})
            r.raise_for_status()
            first_s = time.monotonic() - asked
    finally:
        proc.terminate()
        proc.wait(20)
    return [
        ("serve -> GET /api/twin answers", f"{info_s:.2f} s", "<= 1.5 s"),
        ("serve -> the twin loaded in the background", f"{loaded_s:.2f} s", "-"),
        ("then the first 50-step picture (POST /api/generate, every step's PNGs)", f"{first_s:.2f} s", "<= 1.5 s"),
    ]


def run() -> list[tuple[str, str, str]]:
    return _generation_rows() + _start_rows()


if __name__ == "__main__":
    print(f"Machine: {machine()}.\n")
    print(table(run()))
