"""/api/activations through the app: catalog, capture (in the child process), export, and refused inputs."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from tests.activation_fixtures import png_bytes

TINY = {"preset": "tiny", "sample_size": [16, 16]}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_catalog(client) -> None:
    r = client.post("/api/activations/catalog", json={"preset": "sd1", "image_size": [512, 512]})
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == len(body["points"]) == 229 and body["sample_size"] == [64, 64]
    point = next(p for p in body["points"] if p["name"] == "up-level1-repeat1-vit-block0-cross-q")
    assert point["module"] == "output_blocks.4.1.transformer_blocks.0.attn2.to_q"
    assert point["shape"] == [1, 256, 1280] and point["layout"] == "BNC" and point["factor"] == 4
    assert point["used_by"] and body["groups"]["@recommended"][0] == "up-level1-repeat1-vit-block0-cross-q"
    assert body["model"] == {"preset": "sd1", "config": body["model"]["config"], "weights": None}


def test_capture_with_random_weights(client) -> None:
    body = {**TINY, "points": ["@outputs", "@cross-maps"], "prompt": "a red cat", "image": b64(png_bytes(40, 60)),
            "compare_timestep": 700, "encoding": "png"}  # fmt: skip
    r = client.post("/api/activations/capture", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["random_weights"] is True and "shapes" in out["notice"]
    assert out["inputs"]["latent_source"] == "stand-in" and out["inputs"]["context_source"] == "noise"
    first = out["activations"][0]
    assert first["name"] == "unet-in" and first["stats"]["count"] == 4 * 16 * 16
    png = Image.open(io.BytesIO(base64.b64decode(first["preview"]["png"])))
    assert png.size == (16, 16) and first["preview"]["kind"] == "pca-rgb"
    assert all(a["cosine_to_compare"] is not None for a in out["activations"] if a["kind"] != "cross-map")
    assert [t["text"] for t in out["heatmaps"]["tokens"]][-1] == "<padding>"


def test_heat_maps_as_arrays_sum_to_one(client) -> None:
    body = {**TINY, "points": ["@cross-maps"], "prompt": "a dog", "encoding": "array"}
    out = client.post("/api/activations/capture", json=body).json()
    overall = out["heatmaps"]["overall"]
    n = overall["height"] * overall["width"]
    sums = [sum(m["values"][i] for m in overall["maps"]) for i in range(n)]
    assert all(abs(s - 1) < 1e-4 for s in sums)
    assert len(overall["maps"]) == len(out["heatmaps"]["tokens"])


def test_export(client) -> None:
    from safetensors.torch import load

    body = {**TINY, "export": ["unet-out", "mid-vit-block0-cross-map"], "images": [b64(png_bytes(32, 32)),
            b64(png_bytes(20, 30, 1))]}  # fmt: skip
    r = client.post("/api/activations/export", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    tensors = load(r.content)
    assert tensors["unet-out"].shape == (2, 4, 16, 16) and tensors["mid-vit-block0-cross-map"].shape[0] == 2


def _tiff() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="TIFF")
    return b64(buf.getvalue())


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({**TINY, "points": ["up-level9-repeat0-res-out"]}, 422, "points"),
        ({**TINY, "timestep": 1000}, 422, "timestep"),
        ({**TINY, "prompt": "cat " * 80}, 422, "prompt"),
        ({**TINY, "image": "not base64!"}, 422, "image"),
        ({**TINY, "image": _tiff()}, 422, "image"),
        ({**TINY, "image": b64(png_bytes(4, 5000))}, 422, "image"),
        ({**TINY, "use_weights": True}, 422, "use_weights"),
        ({"preset": "sdxl-base", "image_size": [2048, 2048]}, 413, "image_size"),
        ({"preset": "nope"}, 404, "preset"),
    ],
)
def test_refused(client, body: dict, status: int, field: str) -> None:
    r = client.post("/api/activations/capture", json=body)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field and r.json()["reason"]
