"""The capture child process: keeps the last model it built and answers ("capture" | "export", job) messages, and
the twin's ("generate" | "warm" | "ablate") and a checkpoint knob run's ("intervene") steps.

Replies: ("ok", result), ("input", field, reason) for an input the capture refused, ("error", reason) otherwise.
One model at a time is kept (a new one replaces it), so the process holds at most one UNet's weights.
"""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)


def _explorer(job: dict[str, Any], cache: dict[str, Any]):  # type: ignore[no-untyped-def]
    from sdunet_core import UNetConfig
    from sdunet_core.activations.session import Explorer
    from sdunet_core.twin import PRESET as TWIN
    from sdunet_core.twin import weights_shipped

    key = json.dumps([job["config"], job["weights_path"], job.get("preset")], sort_keys=True)
    if key not in cache:
        cache.clear()  # drop the old model before building the new one
        if job["weights_path"]:
            cache[key] = Explorer.from_checkpoint(job["weights_path"])
        elif job.get("preset") == TWIN and weights_shipped():
            cache[key] = Explorer.twin()  # the trained twin: its shipped weights, tokenizer and text encoder
        else:
            cache[key] = Explorer.random(UNetConfig.from_dict(job["config"]))
    return cache[key]


def handle(op: str, job: dict[str, Any], cache: dict[str, Any]) -> Any:
    from sdunet_core.activations.export import export_activations
    from sdunet_core.activations.report import outcome_dict
    from sdunet_core.activations.session import CaptureSpec
    from sdunet_core.twin import PRESET as TWIN

    if op == "generate":
        from sdunet_core.twin.report import generation_dict

        return generation_dict(job)
    if op == "warm":
        from sdunet_core.twin.report import warm

        return warm()
    if op == "ablate":  # one message of an ablation sweep (app/workers/ablation.py)
        from sdunet_core.twin.knobs.sweep import child_step

        return child_step(job)
    explorer = _explorer(job, cache)
    if op == "intervene":  # one message of a knob run on the server's checkpoint (app/workers/interventions.py)
        from sdunet_core.activations.interventions import child_step

        return child_step(explorer, job)
    spec = CaptureSpec(**{**job["spec"], "sample_size": tuple(job["spec"]["sample_size"])})
    if op == "export":
        from safetensors.torch import save_file

        images = job["images"] or [("seeded-noise", None)]
        tensors, metadata = export_activations(explorer, spec, images)
        save_file(tensors, job["out_path"], metadata=metadata)  # the server streams it from there
        return None
    if job["images"]:
        spec.image = job["images"][0][1]
    if job.get("generation"):
        from sdunet_core.twin.report import step_input

        spec.latent, spec.timestep = step_input(spec.prompt, job["generation"])
    if job.get("preset") == TWIN:
        from sdunet_core.twin.sampling import one_thread

        with one_thread():  # the twin's ops are small: one thread, as its generation runs (see one_thread)
            return outcome_dict(explorer.run(spec), job["encoding"])
    return outcome_dict(explorer.run(spec), job["encoding"])


def worker_main(conn: Any, parent_pid: int) -> None:
    from app.workers.child import guard_parent

    # Started from a request's thread, which may end before the child: no PR_SET_PDEATHSIG, the watchdog only.
    guard_parent(parent_pid, pdeathsig=False)
    from sdunet_core.activations.conditioning import InputError
    from sdunet_core.activations.tokenizer import TokenizerUnavailable

    cache: dict[str, Any] = {}
    while True:
        try:
            op, job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(("ok", handle(op, job, cache)))
        except InputError as exc:
            conn.send(("input", exc.field, exc.reason))
        except TokenizerUnavailable as exc:
            conn.send(("input", "prompt", str(exc)))
        except Exception as exc:  # reported to the parent, which answers with the reason
            log.exception("capture failed")
            conn.send(("error", str(exc) or type(exc).__name__))
