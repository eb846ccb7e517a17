"""The probes on the shipped twin: the issue's gates (colour and shape are read well at a mid timestep, every
shuffled-label control sits at chance), a point that carries nothing scoring chance, the sweep's one-forward rule,
correspondence, and the API's and CLI's answers to good and bad input."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from sdunet_core.probes import ProbeSpec, as_csv, run
from sdunet_core.probes import features as features_module
from sdunet_core.probes.correspondence import pck
from sdunet_core.probes.run import chance_gap, model_for
from sdunet_core.probes.world import TEST_EVERY, probe_set
from sdunet_core.twin import weights_shipped

pytestmark = pytest.mark.skipif(not weights_shipped(), reason="the twin's weights are not installed")

# A few points of every kind of place: the input, the bottom, the way up, and a cross-attention key, which comes
# from the (empty) caption alone and so must know nothing of the picture.
POINTS = [
    "unet-in",
    "mid-repeat1-res-out",
    "up-level0-upsampler-out",
    "up-level1-repeat1-vit-out",
    "down-level1-repeat0-vit-block0-cross-k",
]
MID_T = 500


@pytest.fixture(scope="module")
def gate_run() -> dict:
    spec = ProbeSpec(POINTS, ["shape", "colour", "background"], [MID_T], n_images=256)
    return run(spec)


def _best(result: dict, target: str) -> dict:
    return max((r for r in result["rows"] if r["target"] == target), key=lambda r: r["accuracy"])


def test_gate_colour_and_shape_are_read_from_held_out_pictures(gate_run):
    colour, shape = _best(gate_run, "colour"), _best(gate_run, "shape")
    assert colour["accuracy"] >= 0.95, colour
    assert shape["accuracy"] >= 0.85, shape
    assert colour["n_test"] == 64 and colour["n_train"] == 192  # a quarter held out, by seed


def test_gate_every_shuffled_control_sits_within_ten_points_of_chance(gate_run):
    assert chance_gap(gate_run["rows"]) <= 0.10, sorted(
        gate_run["rows"], key=lambda r: -abs(r["control_accuracy"] - r["chance"])
    )[:3]
    chances = {r["target"]: r["chance"] for r in gate_run["rows"]}
    assert chances == pytest.approx({"shape": 1 / 3, "colour": 1 / 5, "background": 1 / 3})


def test_a_point_computed_from_the_caption_alone_scores_chance(gate_run):
    rows = [r for r in gate_run["rows"] if r["point"] == POINTS[-1]]
    assert len(rows) == 3
    for r in rows:
        assert r["accuracy"] == pytest.approx(r["chance"], abs=0.10), r


def test_the_result_states_its_recipe_and_its_rows_are_typed(gate_run):
    recipe = gate_run["recipe"]
    assert recipe["C"] > 0 and recipe["max_iter"] > 0 and "StandardScaler" in recipe["standardisation"]
    assert recipe["pooling"]["per_target"]["background"] == "global"
    assert recipe["pooling"]["per_target"]["shape"] == "mask"
    row = gate_run["rows"][0]
    assert set(row) == {"point", "target", "t", "accuracy", "control_accuracy", "chance", "n_train", "n_test",
                        "pooling"}  # fmt: skip
    assert len(gate_run["rows"]) == len(POINTS) * 3 and gate_run["random_weights"] is False
    csv = as_csv(gate_run).splitlines()
    assert csv[0].startswith("point,target,t,accuracy") and len(csv) == 1 + len(gate_run["rows"])


def test_split_is_by_seed_and_images_are_never_training_seeds():
    from sdunet_core.twin.train import TRAIN_SEED_BASE

    data = probe_set(80)
    assert max(data.seeds) < TRAIN_SEED_BASE
    assert all((s % TEST_EVERY == 0) == held for s, held in zip(data.seeds, data.test, strict=True))
    assert data.masks[0].sum() > 0 and data.images.shape == (80, 32, 32, 3)


def test_a_sweep_runs_one_forward_per_batch_and_timestep_not_one_per_point(monkeypatch):
    calls: list[int] = []
    model = model_for("shipped")
    real = model.unet.forward

    def counted(x, t, *a, **k):  # type: ignore[no-untyped-def]
        calls.append(int(t[0]))
        return real(x, t, *a, **k)

    monkeypatch.setattr(model.unet, "forward", counted)
    result = run(ProbeSpec(["@outputs"], ["colour"], [0, 900], n_images=40))
    assert calls == [0, 900]  # 40 pictures fit one batch: one forward per timestep for all 25 points
    assert {r["t"] for r in result["rows"]} == {0, 900} and len(result["points"]) == 25


def test_masked_pooling_reads_the_object_not_the_ground():
    model = model_for("shipped")
    data = probe_set(8)
    pooled = features_module.pooled_features(model, [_point("unet-in")], data.images, data.masks, data.seeds, 0)
    # At t = 0 the input is the picture itself: its masked mean is the object's colour, its global mean mostly ground.
    obj = pooled.mask["unet-in"][0]
    expect = data.images[0][data.masks[0]].mean(0) / 127.5 - 1
    assert np.allclose(obj, expect, atol=0.05)


def test_hooked_forwards_from_two_threads_do_not_see_each_other():
    # A server runs a probe job in its thread while a correspondence request runs in another, on the same model.
    from concurrent.futures import ThreadPoolExecutor

    from sdunet_core.probes.correspondence import match

    model = model_for("shipped")
    data = probe_set(96)
    points = [_point("mid-repeat1-res-out"), _point("mid-vit-block0-self-map")]

    def pool():  # type: ignore[no-untyped-def]
        return features_module.pooled_features(model, points, data.images, data.masks, data.seeds, 300, batch=16)

    alone = pool()
    with ThreadPoolExecutor(2) as ex:
        together = ex.submit(pool)
        matches = [ex.submit(match, model, "mid-repeat1-res-out", 261, 710_000, 710_001, 16, 16) for _ in range(6)]
        result = together.result()
        assert len({str(m.result()["match"]) for m in matches}) == 1
    for p in points:
        assert np.array_equal(result.glob[p.name], alone.glob[p.name])
        assert np.array_equal(result.mask[p.name], alone.mask[p.name])


def test_the_probes_schedule_is_the_twins():
    from diffusers import DDPMScheduler

    from sdunet_core.twin.model import SCHEDULE

    model = model_for("shipped")
    trained = getattr(model, "schedule", None) or SCHEDULE  # the schedule the shipped weights were trained with
    assert torch.equal(features_module.schedule(model), DDPMScheduler(**trained).alphas_cumprod.float())
    linear = {**SCHEDULE, "beta_schedule": "linear"}
    assert torch.equal(features_module._alphas(tuple(sorted(linear.items()))), DDPMScheduler(**linear).alphas_cumprod)


def _point(name: str):  # type: ignore[no-untyped-def]
    from sdunet_core.probes.run import twin_points

    return next(p for p in twin_points() if p.name == name)


def test_correspondence_pck_beats_chance_at_the_middle_of_the_u():
    with torch.inference_mode():
        rows = {r.point: r for r in pck(model_for("shipped"), ["up-level0-upsampler-out", "unet-in"], 261, 16)}
    mid = rows["up-level0-upsampler-out"]
    assert mid.pck >= 0.5 and mid.chance < 0.05 and mid.radius_px == pytest.approx(3.2)


# ---- the API ---------------------------------------------------------------------------------------------------


def test_api_probe_job_runs_with_progress_and_returns_rows(client):
    r = client.post("/api/probes", json={"points": ["unet-in"], "targets": ["colour"], "n_images": 40,
                                         "timestep": 100})  # fmt: skip
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    deadline = time.monotonic() + 120
    while True:
        body = client.get(f"/api/probes/{job}").json()
        if body["state"] in ("done", "failed", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert body["state"] == "done", body
    assert body["progress"]["done"] == body["progress"]["total"] == 40 + 1
    (row,) = body["result"]["rows"]
    assert row["point"] == "unet-in" and row["target"] == "colour" and row["t"] == 100 and row["accuracy"] >= 0.9
    assert body["result"]["recipe"]["control"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"points": ["no-such-point"]}, 422, "points"),
        ({"targets": ["hue"]}, 422, "targets"),
        ({"n_images": 100_000}, 413, "n_images"),
        ({"n_images": 4}, 422, "n_images"),
        ({"timesteps": [1000]}, 422, "timesteps"),
        ({"timestep": 5, "timesteps": [5]}, 422, "timesteps"),
        ({"timesteps": []}, 422, "timesteps"),
        ({"preset": "sd15"}, 422, "preset"),
        ({"weights": "mine"}, 422, "weights"),
    ],
)
def test_api_bad_probe_requests_name_the_field(client, body, status, field):
    r = client.post("/api/probes", json=body)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field


def test_api_refuses_a_model_without_weights_and_says_why(client, monkeypatch):
    import importlib

    run_module = importlib.import_module("sdunet_core.probes.run")  # the package's `run` is the function
    monkeypatch.setattr(run_module, "weights_shipped", lambda: False)
    r = client.post("/api/probes", json={"points": ["unet-in"]})
    assert r.status_code == 422 and r.json()["field"] == "weights"
    assert "random weights" in r.json()["reason"]
    # Asked for explicitly, it runs, and the result is marked.
    r = client.post("/api/probes", json={"points": ["unet-in"], "targets": ["colour"], "n_images": 40,
                                         "weights": "random"})  # fmt: skip
    assert r.status_code == 202
    client.delete(f"/api/probes/{r.json()['id']}")


def test_api_correspondence_marks_a_match_and_returns_the_similarity_map(client):
    r = client.post("/api/correspondence", json={"point": "up-level0-upsampler-out", "source_seed": 710000,
                                                  "target_seed": 710001, "x": 17, "y": 14})  # fmt: skip
    assert r.status_code == 200, r.text
    out = r.json()
    sim = np.array(out["similarity"])
    assert sim.shape == (32, 32) and np.unravel_index(sim.argmax(), sim.shape) == (out["match"]["y"], out["match"]["x"])
    assert out["source"]["image"].startswith("data:image/png;base64,")
    r = client.post("/api/correspondence", json={"point": "down-level1-repeat0-vit-block0-cross-k"})
    assert r.status_code == 422 and r.json()["field"] == "point" and "no pixels" in r.json()["reason"]
    r = client.post("/api/correspondence", json={"point": "unet-in", "x": 40})
    assert r.status_code == 422 and r.json()["field"] == "x"


def test_api_pck_runs_as_a_job_and_refuses_points_without_pixels(client):
    r = client.post("/api/correspondence/pck", json={"points": ["up-level0-upsampler-out"], "n_pairs": 8})
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    deadline = time.monotonic() + 120
    while (body := client.get(f"/api/probes/{job}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert body["state"] == "done", body
    (row,) = body["result"]["rows"]
    assert row["n_pairs"] == 8 and 0 <= row["pck"] <= 1 and row["radius_px"] == pytest.approx(3.2)
    assert body["progress"] == {"phase": "done", "done": 8, "total": 8}
    r = client.post("/api/correspondence/pck", json={"points": ["mid-vit-block0-cross-v"]})
    assert r.status_code == 422 and r.json()["field"] == "points"
    r = client.post("/api/correspondence/pck", json={"n_pairs": 100_000})
    assert r.status_code == 422 and r.json()["field"] == "n_pairs"


def test_cli_probe_writes_json_and_csv(tmp_path):
    from app.cli import main

    out, csv = tmp_path / "p.json", tmp_path / "p.csv"
    rc = main(["probe", "--points", "unet-in", "--targets", "colour", "background", "--t", "0", "--n-images", "40",
               "--out", str(out), "--csv", str(csv)])  # fmt: skip
    assert rc == 0
    result = json.loads(out.read_text())
    assert [r["target"] for r in result["rows"]] == ["colour", "background"]
    assert csv.read_text().count("\n") == 3
