"""POST /api/generate with interventions and the /api/ablation job, through the real app."""

from __future__ import annotations

import time

import pytest

PROMPT = "a large red circle at the top left on a black background"


def test_generate_with_a_knob_returns_the_baseline_the_difference_and_the_metrics(client):
    body = {"prompt": PROMPT, "seed": 2, "steps": 6, "interventions": [{"kind": "cut_skip", "blocks": "all"}]}
    r = client.post("/api/generate", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    exp = out["experiment"]
    plain = client.post("/api/generate", json={"prompt": PROMPT, "seed": 2, "steps": 6}).json()
    assert plain["experiment"] is None
    assert exp["baseline"] == plain["image"] and exp["baseline_reading"] == plain["reading"]  # same seed, no knob
    assert out["image"] != plain["image"] and len(out["per_step"]) == 6
    assert exp["mse"] > 0 and exp["ssim"] < 1 and exp["difference"].startswith("data:image/png;base64,")
    assert exp["interventions"][0]["blocks"] == [f"output_blocks.{i}" for i in range(6)]
    assert exp["macs"] is None


def test_a_neutral_knob_gives_the_baseline_and_the_cache_counts_macs(client):
    body = {"prompt": PROMPT, "seed": 2, "steps": 6, "interventions": [{"kind": "cache", "every": 1}]}
    exp = client.post("/api/generate", json=body).json()["experiment"]
    assert exp["mse"] == 0 and exp["ssim"] == 1 and exp["same_reading"] and exp["macs"]["saved_fraction"] == 0
    body["interventions"] = [{"kind": "cache", "every": 3}]
    macs = client.post("/api/generate", json=body).json()["experiment"]["macs"]
    assert (macs["full_calls"], macs["shallow_calls"]) == (2, 4) and macs["saved_fraction"] > 0.3


@pytest.mark.parametrize(
    ("knobs", "field", "words"),
    [
        ([{"kind": "melt"}], "interventions[0].kind", "not a kind"),
        ([{"kind": "cache", "every": 2}, {"kind": "scale", "blocks": "IN42"}], "interventions[1].blocks", "IN42"),
        ([{"kind": "token_weight", "word": "blue"}], "interventions[0].word", "not in the caption"),
        ([{"kind": "swap_prompt", "prompt": "a red dragon"}], "interventions[0].prompt", "'dragon'"),
    ],
)
def test_a_bad_intervention_is_a_422_naming_the_field(client, knobs, field, words):
    r = client.post("/api/generate", json={"prompt": PROMPT, "steps": 4, "interventions": knobs})
    assert r.status_code == 422
    assert r.json()["field"] == field and words in r.json()["reason"]


def test_the_ablation_sweep_is_a_job_with_progress_and_an_effect_per_block(client):
    r = client.post("/api/ablation", json={"prompts": [PROMPT], "seeds": [0, 1], "steps": 3, "what": "skips"})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    for _ in range(600):
        snap = client.get(f"/api/ablation/{job_id}").json()
        if snap["state"] in ("done", "failed"):
            break
        time.sleep(0.2)
    assert snap["state"] == "done", snap
    assert snap["progress"] == {"done": 7, "total": 7}
    result = snap["result"]
    assert [e["target"] for e in result["effects"]] == [f"output_blocks.{i}" for i in range(6)]
    assert result["pictures"] == 2 and all(0 <= e["verdict_change"] <= 1 for e in result["effects"])
    assert any(e["ssim_drop"] > 0 for e in result["effects"])
    assert sorted(result["ranking"]) == sorted(e["target"] for e in result["effects"])


def test_ablation_input_errors(client):
    bad = client.post("/api/ablation", json={"prompts": ["a red dragon"], "seeds": [0]})
    assert bad.status_code == 422 and bad.json()["field"] == "prompts[0]"
    assert client.post("/api/ablation", json={"what": "heads"}).status_code == 422
    negative = client.post("/api/ablation", json={"seeds": [0, -1]})
    assert negative.status_code == 422 and negative.json()["field"] == "seeds.1"
    big = client.post("/api/ablation", json={"prompts": ["a red circle"] * 8, "seeds": list(range(32)), "steps": 20})
    assert big.status_code == 422 and big.json()["field"] == "seeds" and "1280" in big.json()["reason"]
    assert client.get("/api/ablation/nope").status_code == 404
