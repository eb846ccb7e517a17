"""Probes on the server's checkpoint: a real server started with a tiny whole SD 1.x checkpoint (UNet, VAE, CLIP),
a small probe job through the API (typed rows, the checkpoint named, the encoding stated, progress counted), the
CLI's --weights, the bounds (413) and a server without a checkpoint (422 naming the field), and the Probes view
offering the checkpoint only where the server has one. On a tiny random checkpoint accuracy means nothing: these
tests assert structure, never accuracy."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.schemas.probes import ProbeRow
from sdunet_core.probes import checkpoint as ckpt
from tests.activation_fixtures import write_checkpoint
from tests.harness import serve

FILE = "tiny-sd1.safetensors"
POINTS = ["unet-in", "mid-vit-block0-self-map"]
WAIT_S = 600  # a wait bound, not a speed claim: the machine these tests run on is shared and busy


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("probe-ckpt") / FILE
    write_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def checkpoint_server(checkpoint_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"SDUNET_WEIGHTS": str(checkpoint_file), "SDUNET_TRACE_WORKERS": "0"}
    with serve(env=env, log=tmp_path_factory.mktemp("probe-ckpt-server") / "uvicorn.log") as (url, _proc):
        yield url


def _finish(url: str, job: str) -> dict:
    deadline = time.monotonic() + WAIT_S
    while (body := httpx.get(f"{url}/api/probes/{job}", timeout=30).json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, body
        time.sleep(0.5)
    return body


def test_a_probe_job_on_the_checkpoint_returns_typed_rows_and_names_it(checkpoint_server):
    url = checkpoint_server
    models = httpx.get(f"{url}/api/probes/models", timeout=30).json()
    assert [m["model"] for m in models] == ["twin", "checkpoint"]
    assert models[1] == {"model": "checkpoint", "file": FILE, "max_images": ckpt.MAX_IMAGES,
                         "image_size": ckpt.IMAGE_SIZE, "usable": True, "reason": None}  # fmt: skip

    body = {"model": "checkpoint", "points": POINTS, "targets": ["colour", "background"], "n_images": 40,
            "timestep": 500}  # fmt: skip
    r = httpx.post(f"{url}/api/probes", json=body, timeout=60)
    assert r.status_code == 202, r.text
    done = _finish(url, r.json()["id"])
    assert done["state"] == "done", done
    # Progress: each picture encoded once, forwarded once at the one t, then one probe per point and target.
    assert done["progress"]["done"] == done["progress"]["total"] == 40 + 40 + 2 * 2
    res = done["result"]
    assert (res["model"], res["checkpoint"], res["preset"], res["weights"]) == ("checkpoint", FILE, None, "checkpoint")
    assert res["random_weights"] is False and res["timesteps"] == [500]
    assert [p["name"] for p in res["points"]] == POINTS
    rows = [ProbeRow(**row) for row in res["rows"]]
    assert [(r.point, r.target, r.t) for r in rows] == [(p, t, 500) for p in POINTS for t in ("colour", "background")]
    for row in rows:
        assert 0 <= row.accuracy <= 1 and 0 <= row.control_accuracy <= 1
        assert row.n_train + row.n_test == 40 and row.n_test == 10
    assert {r.target: r.chance for r in rows} == {"colour": pytest.approx(1 / 5), "background": pytest.approx(1 / 3)}
    # The recipe states the size, the resize and the caption, as the README does.
    recipe = res["recipe"]
    encoding = recipe["encoding"]
    assert f"{ckpt.IMAGE_SIZE}x{ckpt.IMAGE_SIZE} by nearest-neighbour" in encoding and FILE in encoding
    assert "32x32 latents" in encoding and "empty caption" in recipe["input"]
    assert recipe["masks"].endswith("(pixel for pixel)")


def test_checkpoint_bounds_and_bad_points_name_the_field(checkpoint_server):
    url = checkpoint_server
    over = httpx.post(f"{url}/api/probes", json={"model": "checkpoint", "n_images": ckpt.MAX_IMAGES + 1}, timeout=60)
    assert over.status_code == 413 and over.json()["field"] == "n_images"
    # The twin's bound is larger: the same count on the twin is accepted (and cancelled at once).
    twin = httpx.post(f"{url}/api/probes", json={"points": ["unet-in"], "n_images": ckpt.MAX_IMAGES + 1}, timeout=60)
    assert twin.status_code == 202, twin.text
    httpx.delete(f"{url}/api/probes/{twin.json()['id']}", timeout=30)
    bad = httpx.post(f"{url}/api/probes", json={"model": "checkpoint", "points": ["no-such-point"]}, timeout=60)
    assert bad.status_code == 422 and bad.json()["field"] == "points"
    rnd = httpx.post(f"{url}/api/probes", json={"model": "checkpoint", "weights": "random"}, timeout=60)
    assert rnd.status_code == 422 and rnd.json()["field"] == "weights"


def test_a_server_without_a_checkpoint_refuses_it_and_says_why(client):
    r = client.post("/api/probes", json={"model": "checkpoint", "points": ["unet-in"]})
    assert r.status_code == 422 and r.json()["field"] == "model"
    assert "--weights FILE" in r.json()["reason"]
    assert [m["model"] for m in client.get("/api/probes/models").json()] == ["twin"]


def test_cli_probe_with_weights_writes_the_checkpoints_rows(checkpoint_file, tmp_path):
    from app.cli import main

    out = tmp_path / "p.json"
    rc = main(["probe", "--weights", str(checkpoint_file), "--points", "unet-in", "--targets", "shape", "--t", "250",
               "--n-images", "40", "--out", str(out)])  # fmt: skip
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["model"] == "checkpoint" and result["checkpoint"] == FILE
    assert [(r["point"], r["target"], r["t"]) for r in result["rows"]] == [("unet-in", "shape", 250)]


@pytest.mark.browser
def test_the_probes_view_offers_the_checkpoint_only_where_there_is_one(page, checkpoint_server, live_server,
                                                                        console_errors):  # fmt: skip
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{live_server}/#tiny")
    page.wait_for_function("() => document.querySelector('#probes').dataset.models === 'twin'")
    assert page.locator("#probe-model").count() == 0 or not page.locator("#probe-model").is_visible()

    page.goto(f"{checkpoint_server}/#tiny")
    page.wait_for_function("() => document.querySelector('#probes').dataset.models === 'twin checkpoint'")
    page.locator("#probes").scroll_into_view_if_needed()
    assert page.locator("#probe-model").is_visible()
    page.select_option("#probe-model", "checkpoint")
    assert page.get_attribute("#probe-n", "max") == str(ckpt.MAX_IMAGES)
    for target in ("shape", "position", "background"):
        page.uncheck(f"#probe-target-{target}")
    page.fill("#probe-timesteps", "500")
    page.fill("#probe-n", "40")
    page.click("#probe-go")
    page.wait_for_function("() => ['done', 'error'].includes(document.querySelector('#probes').dataset.state)",
                           timeout=WAIT_S * 1000)  # fmt: skip
    assert page.get_attribute("#probes", "data-state") == "done", page.inner_text("#probe-error")
    assert page.inner_text("#probe-sentence").startswith(f"On {FILE}, at t = 500")
    page.locator("#probe-chart").scroll_into_view_if_needed()
    page.screenshot(path="test-results/probes-checkpoint-1280x720.png")
    # Colouring shows the checkpoint's U (the weights' model), painted, with its legend.
    page.click("#probe-colour")
    page.wait_for_function(
        "(key) => document.body.dataset.paint === 'probes' && document.body.dataset.preset === key"
        " && document.body.dataset.ready === 'true'",
        arg=f"weights:{FILE}",
    )
    badges = page.eval_on_selector_all("svg.unet .layer-boxes > g.box .share", "els => els.map(e => e.textContent)")
    assert badges and all(b.endswith("%") for b in badges)
    assert page.locator("#probe-legend [data-end='lo']").inner_text() == "20.0% chance"
    assert console_errors == []
