"""A local weights file: read in our key names (original or diffusers layout), statistics per module, the API
that serves them when the server starts with --weights, and profiles that run with them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import save_file

from sdunet_core import PRESETS, UNetModel
from sdunet_core.checkpoint.diffusers_keys import to_diffusers_name
from sdunet_core.checkpoint.header import CheckpointError
from sdunet_core.checkpoint.weights import WeightsFile
from tests.conftest import BASE_URL


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(7)
    return {k: v.contiguous() for k, v in UNetModel(PRESETS["tiny"].config).state_dict().items()}


@pytest.fixture(scope="module")
def ldm_file(tmp_path_factory, tiny_state) -> Path:
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    extra = {"first_stage_model.decoder.conv_in.weight": torch.zeros(4, 4, 3, 3)}
    save_file({**{f"model.diffusion_model.{k}": v for k, v in tiny_state.items()}, **extra}, str(path))
    return path


def test_reads_our_keys_from_an_ldm_checkpoint(ldm_file, tiny_state) -> None:
    weights = WeightsFile(ldm_file)
    assert weights.detection.preset == "tiny" and weights.detection.prefix == "model.diffusion_model."
    loaded = weights.state_dict()
    assert loaded.keys() == tiny_state.keys()
    assert all(torch.equal(loaded[k], v) for k, v in tiny_state.items())


def test_reads_our_keys_from_a_diffusers_file(tmp_path, tiny_state) -> None:
    config = PRESETS["tiny"].config
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    save_file({to_diffusers_name(k, config): v for k, v in tiny_state.items()}, str(path))
    weights = WeightsFile(path)
    assert weights.detection.format == "diffusers" and weights.detection.preset == "tiny"
    loaded = weights.state_dict()
    assert loaded.keys() == tiny_state.keys()
    assert all(torch.equal(loaded[k], v) for k, v in tiny_state.items())


def test_stats_match_torch(ldm_file, tiny_state) -> None:
    weights = WeightsFile(ldm_file)
    stats = weights.stats("input_blocks.4")
    values = torch.cat([v.flatten().double() for k, v in tiny_state.items() if k.startswith("input_blocks.4.")])
    assert stats["count"] == values.numel()
    assert stats["mean"] == pytest.approx(float(values.mean()), rel=1e-9)
    assert stats["std"] == pytest.approx(float(values.std(unbiased=False)), rel=1e-6)
    assert stats["norm"] == pytest.approx(float(values.norm()), rel=1e-9)
    assert stats["min"] == float(values.min()) and stats["max"] == float(values.max())
    assert sum(stats["histogram"]["counts"]) == values.numel()
    assert len(stats["histogram"]["edges"]) == len(stats["histogram"]["counts"]) + 1
    assert [t["key"] for t in stats["tensors"]] == [k for k in tiny_state if k.startswith("input_blocks.4.")]
    with pytest.raises(KeyError):
        weights.stats("input_blocks.99")


def test_nonfinite_weights_are_counted_apart(tmp_path, tiny_state) -> None:
    # A broken fine-tune holds inf and NaN: statistics are of the finite values, the others are counted.
    broken = dict(tiny_state)
    key = next(k for k in broken if k.startswith("input_blocks.4.") and k.endswith("weight"))
    bad = broken[key].clone()
    bad.view(-1)[:3] = torch.tensor([float("inf"), float("-inf"), float("nan")])
    broken[key] = bad
    path = tmp_path / "broken.safetensors"
    save_file({f"model.diffusion_model.{k}": v for k, v in broken.items()}, str(path))
    stats = WeightsFile(path).stats("input_blocks.4")
    finite = torch.cat([v.flatten().double() for k, v in broken.items() if k.startswith("input_blocks.4.")])
    finite = finite[torch.isfinite(finite)]
    assert stats["nonfinite"] == 3 and stats["count"] == finite.numel()
    assert stats["mean"] == pytest.approx(float(finite.mean()), rel=1e-9)
    assert stats["max"] == float(finite.max()) and sum(stats["histogram"]["counts"]) == finite.numel()
    assert next(t for t in stats["tensors"] if t["key"] == key)["nonfinite"] == 3


def test_a_file_that_does_not_fit_is_refused(tmp_path, tiny_state) -> None:
    path = tmp_path / "broken.safetensors"
    partial = dict(list(tiny_state.items())[:-3])
    save_file(partial, str(path))
    with pytest.raises(CheckpointError) as info:
        WeightsFile(path)
    assert info.value.field in ("weights", "shapes") and str(info.value).startswith(info.value.field)


@pytest.fixture
def weights_client(ldm_file, monkeypatch):
    from app.main import create_app
    from app.settings import get_settings

    monkeypatch.setenv("SDUNET_WEIGHTS", str(ldm_file))
    monkeypatch.setenv("SDUNET_TRACE_WORKERS", "1")  # a second app beside the session's: one worker is enough
    get_settings.cache_clear()
    try:
        with TestClient(create_app(), base_url=BASE_URL) as c:
            yield c
    finally:
        get_settings.cache_clear()


def test_weights_api(weights_client, tiny_state) -> None:
    info = weights_client.get("/api/weights").json()
    assert info["file"] == "tiny.safetensors" and info["preset"] == "tiny" and info["format"] == "ldm"
    assert info["num_parameters"] == sum(v.numel() for v in tiny_state.values())
    r = weights_client.get("/api/weights/stats", params={"path": "middle_block.1"})
    assert r.status_code == 200
    values = torch.cat([v.flatten().double() for k, v in tiny_state.items() if k.startswith("middle_block.1.")])
    assert r.json()["mean"] == pytest.approx(float(values.mean()), rel=1e-9)
    r = weights_client.get("/api/weights/stats", params={"path": "nowhere"})
    assert r.status_code == 404 and r.json()["field"] == "path"
    r = weights_client.get("/api/weights/stats")  # no ?path= at all: the query parameter is named, not "body"
    assert r.status_code == 422 and r.json()["field"] == "path" and r.json()["reason"] == "Field required"


def test_profile_with_the_weights(weights_client) -> None:
    r = weights_client.post("/api/profile", json={"preset": "tiny", "repeats": 1, "use_weights": True})
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    deadline = time.monotonic() + 120
    while (body := weights_client.get(f"/api/profile/{job}").json())["state"] not in ("done", "failed", "cancelled"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert body["state"] == "done", body["error"]
    assert body["result"]["totals"]["time_ms"] > 0
    r = weights_client.post("/api/profile", json={"preset": "sd1", "use_weights": True})
    assert r.status_code == 422
    assert r.json()["reason"] == "the weights file tiny.safetensors holds another architecture"


def test_no_weights_means_404(client) -> None:
    r = client.get("/api/weights")
    assert r.status_code == 404
    assert r.json()["reason"] == "no weights file was given (start the server with --weights FILE)"
    r = client.post("/api/profile", json={"preset": "tiny", "use_weights": True})
    assert r.status_code == 422 and r.json()["field"] == "use_weights"


def test_serve_with_a_bad_weights_file_fails_clearly(tmp_path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 16)
    out = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--weights", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr
