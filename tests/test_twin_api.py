"""GET /api/twin and POST /api/generate, and the twin in the activation capture, through the real app."""

from __future__ import annotations

import base64
import io
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from sdunet_core.twin import world
from tests.harness import serve


def _png(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_twin_info_lists_the_words_by_role_and_the_training_record(client):
    r = client.get("/api/twin")
    assert r.status_code == 200
    body = r.json()
    assert body["preset"] == "twin" and body["image_size"] == [32, 32] and body["context_tokens"] == 16
    assert body["vocabulary"]["colours"] == list(world.COLOURS)
    assert body["vocabulary"]["shapes"] == list(world.SHAPES)
    assert set(body["examples"]) == {"one_object", "two_objects"} and all(body["examples"].values())
    record = body["training"]
    assert record["steps_done"] >= 1 and record["loss_curve"] and record["versions"]["torch"]
    assert body["defaults"]["steps"] == 50 and body["samplers"] == ["ddim", "euler"]


def test_a_server_loads_the_twin_at_start_in_the_background_when_asked():
    with serve(env={"SDUNET_WARM_TWIN": "1"}) as (url, _):
        deadline, loaded = time.monotonic() + 120, False
        while not loaded and time.monotonic() < deadline:
            loaded = httpx.get(f"{url}/api/twin", timeout=30).json()["loaded"]
            time.sleep(0.2)
        assert loaded, "the twin was not loaded in the background within 120 s"
        r = httpx.post(f"{url}/api/generate", json={"prompt": "a red circle", "steps": 4}, timeout=60)
        assert r.status_code == 200, r.text
    with serve() as (url, _):  # the tests' default: no warm-up, and the info says so
        assert httpx.get(f"{url}/api/twin", timeout=30).json()["loaded"] is False


def test_generate_returns_the_picture_every_step_and_the_readers_verdict(client):
    body = {"prompt": "a large red circle at the top left on a black background", "seed": 5, "steps": 8}
    r = client.post("/api/generate", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["tokens"][:3] == ["<start>", "a", "large"] and len(out["tokens"]) == 16
    assert _png(out["image"]).shape == (32, 32, 3)
    assert [s["index"] for s in out["per_step"]] == list(range(8))
    ts = [s["t"] for s in out["per_step"]]
    assert ts == sorted(ts, reverse=True) and 0 < ts[-1] < ts[0] <= 999
    for step in out["per_step"]:
        assert all(_png(step[k]).shape == (32, 32, 3) for k in ("x_t", "eps", "x0"))
    assert out["unet_calls"] == 8 and out["reading"]["ground"] in world.GROUNDS
    again = client.post("/api/generate", json=body).json()
    assert again["image"] == out["image"]  # the same seed, the same picture


def test_generate_returns_arrays_only_of_the_tensors_asked_for(client):
    r = client.post("/api/generate", json={"prompt": "a blue square", "steps": 3, "return": ["x0"], "arrays": True})
    assert r.status_code == 200, r.text
    step = r.json()["per_step"][0]
    assert step["x_t"] is None and step["eps"] is None and step["x0"]
    values = np.frombuffer(base64.b64decode(step["arrays"]["x0"]), dtype="<f4")
    assert values.size == 3 * 32 * 32 and np.isfinite(values).all()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"prompt": "a red dragon"}, "prompt", "'dragon' is not in the twin's vocabulary"),
        ({"prompt": "a red circle", "negative": "a cat"}, "negative", "'cat'"),
        ({"prompt": " ".join(["red"] * 15)}, "prompt", "at most 14"),
        ({"prompt": "a red circle", "steps": 0}, "steps", "greater than or equal to 1"),
        ({"prompt": "a red circle", "steps": 201}, "steps", "less than or equal to 200"),
        ({"prompt": "a red circle", "guidance": 21}, "guidance", "less than or equal to 20"),
        ({"prompt": "a red circle", "sampler": "plms"}, "sampler", "'ddim' or 'euler'"),
        ({"prompt": "a red circle", "return": ["latents"]}, "return", "'x_t', 'eps' or 'x0'"),
    ],
)
def test_bad_generate_input_is_a_422_naming_the_field(client, body, field, words):
    r = client.post("/api/generate", json=body)
    assert r.status_code == 422
    err = r.json()
    assert err["field"].split(".")[0] == field and words in err["reason"], err


def test_the_capture_of_the_twin_uses_its_weights_and_words(client):
    body = {"preset": "twin", "prompt": "a red circle", "points": ["@cross-maps"], "timestep": 300}
    r = client.post("/api/activations/capture", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["random_weights"] is False and "twin" in out["model"]["weights"]
    assert [t["text"] for t in out["tokens"]] == ["<start>", "a", "red", "circle", "<end>"]
    assert out["inputs"]["sample_size"] == [32, 32] and out["inputs"]["context_source"] == "text encoder"
    bad = client.post("/api/activations/capture", json={**body, "prompt": "a red cat"})
    assert bad.status_code == 422 and bad.json()["field"] == "prompt" and "'cat'" in bad.json()["reason"]
    catalog = client.post("/api/activations/catalog", json={"preset": "twin"}).json()
    assert catalog["context_tokens"] == 16 and catalog["image_size"] == [32, 32]


def test_a_capture_at_a_generation_step_sees_that_steps_x_t(client):
    gen = {"seed": 2, "steps": 6, "guidance": 3.0, "sampler": "ddim", "step": 4}
    body = {"preset": "twin", "prompt": "a green square", "points": ["@outputs"], "generation": gen}
    r = client.post("/api/activations/capture", json=body)
    assert r.status_code == 200, r.text
    made = client.post("/api/generate", json={"prompt": "a green square", "seed": 2, "steps": 6}).json()
    assert r.json()["inputs"]["timestep"] == made["per_step"][4]["t"]
    assert r.json()["inputs"]["latent_source"] == "generation"
    past = client.post("/api/activations/capture", json={**body, "generation": {**gen, "step": 6}})
    assert past.status_code == 422 and past.json()["field"] == "generation.step"
    other = client.post("/api/activations/capture", json={**body, "preset": "tiny"})
    assert other.status_code == 422 and other.json()["field"] == "generation"
