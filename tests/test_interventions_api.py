"""Knobs on the server's checkpoint: POST /api/interventions as a job, through a real server started with a tiny
whole SD 1.x checkpoint (UNet, VAE, CLIP text encoder); and the 422 of a server without one."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from tests.activation_fixtures import write_checkpoint
from tests.harness import serve

CAPTION = "a photo of a dog"
SMALL = {"prompt": CAPTION, "seed": 1, "steps": 3, "guidance": 7.5, "image_size": [64, 64]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("knobs-ckpt") / "tiny-sd1.safetensors"
    write_checkpoint(path)
    env = {"SDUNET_WEIGHTS": str(path), "SDUNET_TRACE_WORKERS": "0"}
    with serve(env=env, log=tmp_path_factory.mktemp("knobs-server") / "uvicorn.log") as (url, _proc):
        yield url


def _wait(url: str, job_id: str) -> dict:
    for _ in range(1200):  # a bound for a busy machine, not a timing: the tiny model runs a step in a moment
        snap = httpx.get(f"{url}/api/interventions/{job_id}", timeout=30).json()
        if snap["state"] in ("done", "failed", "cancelled"):
            return snap
        time.sleep(0.25)
    raise AssertionError(f"the job did not end: {snap}")


def _run(url: str, knobs: list[dict], **extra) -> dict:
    r = httpx.post(f"{url}/api/interventions", json={**SMALL, **extra, "interventions": knobs}, timeout=60)
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "queued" and r.json()["result"] is None
    snap = _wait(url, r.json()["id"])
    assert snap["state"] == "done", snap
    return snap


def _picture(data_url: str) -> Image.Image:
    assert data_url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def test_a_knob_run_on_the_checkpoint_returns_both_pictures_their_difference_and_the_metrics(server):
    assert httpx.get(f"{server}/api/weights").json()["file"] == "tiny-sd1.safetensors"  # what the page asks
    snap = _run(server, [{"kind": "cut_skip", "blocks": "all"}])
    assert snap["progress"] == {"phase": "done", "done": 3, "total": 3}  # one batch: a step runs both pictures
    out = snap["result"]
    for key in ("image", "baseline", "difference"):
        assert _picture(out[key]).size == (64, 64)
    assert out["image"] != out["baseline"] and out["mse"] > 0 and out["ssim"] < 1
    assert out["interventions"][0]["blocks"] == [f"output_blocks.{i}" for i in range(4)]
    assert out["verdict"] is None and out["same_reading"] is None and "twin" in out["verdict_reason"]
    assert out["batched"] is True and out["unet_calls"] == {"baseline": 3, "knobs": 3, "full": 3, "shallow": 0}
    assert (out["image_size"], out["steps"], out["sampler"]) == ([64, 64], 3, "ddim")


def test_a_neutral_knob_gives_the_baseline_and_the_cache_runs_apart(server):
    same = _run(server, [{"kind": "scale", "blocks": "M00", "weight": 1}])["result"]
    assert same["image"] == same["baseline"] and same["mse"] == 0 and same["ssim"] == 1
    snap = _run(server, [{"kind": "cache", "every": 2}], steps=4)
    assert snap["progress"]["total"] == 8  # the baseline's four steps, then the knob run's
    calls = snap["result"]["unet_calls"]
    assert snap["result"]["batched"] is False and (calls["full"], calls["shallow"]) == (2, 2)


def test_a_queued_run_can_be_cancelled(server):
    long = {**SMALL, "steps": 50, "interventions": [{"kind": "guidance", "scale": 1}]}
    first = httpx.post(f"{server}/api/interventions", json=long).json()
    second = httpx.post(f"{server}/api/interventions", json=long).json()
    # The second waits behind the first (one run at a time): cancelled at once, before it starts.
    gone = httpx.delete(f"{server}/api/interventions/{second['id']}").json()
    assert gone["state"] == "cancelled"
    httpx.delete(f"{server}/api/interventions/{first['id']}")
    assert _wait(server, first["id"])["state"] in ("cancelled", "done")  # done only if it ended before the DELETE
    assert _run(server, [{"kind": "negative", "prompt": "a cat"}])["result"]["mse"] > 0  # the next run is whole


@pytest.mark.parametrize(
    ("change", "status", "field", "words"),
    [
        ({"image_size": [1024, 1024]}, 413, "image_size", "512x512"),
        ({"image_size": [60, 64]}, 422, "image_size", "multiples of 8"),
        ({"steps": 51}, 422, "steps", "50"),
        ({"interventions": [{"kind": "scale", "blocks": "IN42"}]}, 422, "interventions[0].blocks", "IN42"),
        ({"interventions": [{"kind": "token_weight", "word": "cat"}]}, 422, "interventions[0].word", "not in"),
        ({"prompt": "dog " * 80}, 422, "prompt", "77"),
    ],
)
def test_bad_requests_name_the_field(server, change, status, field, words):
    body = {**SMALL, "interventions": [{"kind": "cut_skip", "blocks": "all"}], **change}
    r = httpx.post(f"{server}/api/interventions", json=body)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field and words in r.json()["reason"]


def test_without_a_checkpoint_the_run_is_a_422_naming_the_model(client):
    r = client.post("/api/interventions", json={**SMALL, "interventions": [{"kind": "cut_skip", "blocks": "all"}]})
    assert r.status_code == 422
    assert r.json()["field"] == "model" and "--weights" in r.json()["reason"]
    assert client.get("/api/interventions/nope").status_code == 404
