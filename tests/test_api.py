"""The API with FastAPI's TestClient: every endpoint's success path and each class of bad input, full bodies."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from sdunet_core import PRESETS
from sdunet_core.tracer.trace import trace_unet


def _err(field: str | None, reason: str, **extra: object) -> dict:
    return {"detail": f"{field}: {reason}" if field else reason, "field": field, "reason": reason, **extra}


def test_presets_list(client) -> None:
    r = client.get("/api/presets")
    assert r.status_code == 200
    assert r.json() == [p.summary().model_dump() for p in PRESETS.values()]
    assert {p["name"] for p in r.json()} >= {"sd1", "sd2", "sdxl-base", "tiny"}


def test_preset_detail(client) -> None:
    r = client.get("/api/presets/sd1")
    assert r.status_code == 200
    body = r.json()
    assert body["config"] == PRESETS["sd1"].config.to_dict()
    assert body["ldm_params"] == PRESETS["sd1"].config.to_ldm()
    assert body["num_parameters"] == 859_520_964


def test_unknown_preset_is_404(client) -> None:
    r = client.get("/api/presets/sd9")
    assert r.status_code == 404
    assert r.json() == _err("name", f"unknown preset 'sd9'; known: {sorted(PRESETS)}")


def test_trace_preset_matches_the_library(client) -> None:
    r = client.post("/api/trace", json={"preset": "tiny"})
    assert r.status_code == 200
    assert r.json() == json.loads(json.dumps(trace_unet("tiny").to_dict()))


def test_trace_by_config_and_by_ldm_params_equal_the_preset(client) -> None:
    tiny = PRESETS["tiny"]
    same_input = {"sample_size": list(tiny.sample_size), "context_tokens": tiny.context_tokens}
    by_preset = client.post("/api/trace", json={"preset": "tiny"}).json()
    by_config = client.post("/api/trace", json={"config": tiny.config.to_dict(), **same_input})
    by_ldm = client.post("/api/trace", json={"ldm_params": tiny.ldm_params, **same_input})
    # The same model and input; only a preset asked for by name is labelled with it (no name is guessed).
    assert by_preset["preset"] == "tiny"
    assert by_config.json() == by_ldm.json() == {**by_preset, "preset": None}


def test_a_preset_keeps_its_name_and_reference_input(client) -> None:
    # sd2 and sd2-v are one network, but sd2-v is the 768-pixel model.
    body = client.post("/api/trace", json={"preset": "sd2-v"}).json()
    assert body["preset"] == "sd2-v"
    assert body["input"]["image_size"] == [768, 768] and body["input"]["sample_size"] == [96, 96]
    assert client.post("/api/trace", json={"preset": "sd2"}).json()["input"]["image_size"] == [512, 512]
    # A custom config reports the image size it was traced at.
    custom = client.post("/api/trace", json={"config": PRESETS["sd2"].config.to_dict(), "image_size": [640, 640]})
    assert custom.json()["preset"] is None and custom.json()["input"]["image_size"] == [640, 640]


def test_trace_image_size_is_divided_by_the_latent_factor(client) -> None:
    r = client.post("/api/trace", json={"preset": "sd1", "image_size": [768, 512], "context_tokens": 10})
    assert r.status_code == 200
    body = r.json()
    assert body["input"]["sample_size"] == [96, 64]
    assert body["input"]["image_size"] == [768, 512]
    assert body["input"]["context"]["shape"] == [1, 10, 768]


def test_trace_cache_hit_same_body_and_etag_and_304(client) -> None:
    a = client.post("/api/trace", json={"preset": "ldm-churches"})
    b = client.post("/api/trace", json={"preset": "ldm-churches"})
    assert a.status_code == b.status_code == 200
    assert a.content == b.content and a.headers["etag"] == b.headers["etag"]
    c = client.post("/api/trace", json={"preset": "ldm-churches"}, headers={"If-None-Match": a.headers["etag"]})
    assert c.status_code == 304
    assert client.app.state.traces.hits >= 2


def test_trace_is_gzipped_and_small(client) -> None:
    r = client.post("/api/trace", json={"preset": "sd1"}, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    raw = client.post("/api/trace", json={"preset": "sd1"}, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert len(gzip.compress(raw.content)) < 400_000


@pytest.mark.parametrize(
    ("body", "status", "field", "reason"),
    [
        ({}, 422, "preset", "give exactly one of preset, config, ldm_params, diffusers_config (got none)"),
        (
            {"preset": "sd1", "config": {}},
            422,
            "preset",
            "give exactly one of preset, config, ldm_params, diffusers_config (got ['preset', 'config'])",
        ),
        ({"preset": "sd1", "batch": 0}, 422, "batch", "Input should be greater than or equal to 1"),
        (
            {"preset": "sd1", "batch": "x"},
            422,
            "batch",
            "Input should be a valid integer",
        ),
        ({"preset": "sd1", "colour": "red"}, 422, "colour", "Extra inputs are not permitted"),
        (
            {"preset": "sd1", "image_size": [500, 512]},
            422,
            "image_size",
            "[500, 512] must be a multiple of the latent factor 8",
        ),
        (
            {"preset": "sd1", "image_size": [8192, 512]},
            413,
            "image_size",
            "[8192, 512] is over the limit of 4096 pixels per side",
        ),
        (
            {"preset": "sd1", "sample_size": [63, 64]},
            422,
            "sample_size",
            "63 is not divisible by 8 (2 ** (levels - 1) for 4 levels); the skips would not line up",
        ),
        (
            {"preset": "sd1", "image_size": [512, 512], "sample_size": [64, 64]},
            422,
            "image_size",
            "give image_size or sample_size, not both",
        ),
        ({"preset": "sd1", "batch": 65}, 413, "batch", "65 is over the limit of 64"),
        ({"preset": "sd1", "context_tokens": 5000}, 413, "context_tokens", "5000 is over the limit of 1024"),
        ({"config": {"in_channels": 4}}, 422, "out_channels", "is required"),
        (
            {"config": {**PRESETS["tiny"].config.to_dict(), "num_heads": 4}},
            422,
            "num_heads",
            "give exactly one of num_heads and num_head_channels, got num_heads=4, num_head_channels=8",
        ),
        ({"config": {**PRESETS["tiny"].config.to_dict(), "wings": 2}}, 422, "wings", None),
        (
            {"ldm_params": {**PRESETS["sd1"].ldm_params, "context_dim": None}},
            422,
            "context_dim",
            "a spatial transformer needs context_dim (the width of the context tokens)",
        ),
        ({"ldm_params": {**PRESETS["sd1"].ldm_params, "flux": 1}}, 422, "flux", None),
    ],
)
def test_bad_trace_requests(client, body: dict, status: int, field: str, reason: str | None) -> None:
    r = client.post("/api/trace", json=body)
    assert r.status_code == status, r.text
    got = r.json()
    assert got["field"] == field
    if reason is not None:
        expected = _err(field, reason)
        if "errors" in got:
            expected["errors"] = [{"field": field, "reason": reason}]
        assert got == expected
    else:
        assert field in got["reason"] and got["detail"].startswith(field)


def test_unknown_trace_preset_is_404(client) -> None:
    r = client.post("/api/trace", json={"preset": "sd9"})
    assert r.status_code == 404
    assert r.json() == _err("preset", f"unknown preset 'sd9'; known: {sorted(PRESETS)}")


def test_malformed_json_names_the_body(client) -> None:
    r = client.post("/api/trace", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422
    reason = "invalid JSON: Expecting property name enclosed in double quotes"
    assert r.json() == _err("body", reason, errors=[{"field": "body", "reason": reason}])


def test_body_over_the_size_limit_is_413(client) -> None:
    r = client.post(
        "/api/trace", content=b"{" + b" " * (33 * 2**20) + b"}", headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json() == _err("body", "request body over the limit of 32 MiB")


def test_source_of_our_classes_only(client) -> None:
    r = client.get("/api/source/ResBlock")
    assert r.status_code == 200
    body = r.json()
    assert body["kind"] == "ResBlock" and body["module"] == "sdunet_core.model.blocks"
    assert body["source"].startswith("class ResBlock(")
    for kind in ("os", "Path", "torch", "__init__", "nn"):
        r = client.get(f"/api/source/{kind}")
        assert r.status_code == 404
        assert r.json()["field"] == "kind"
    assert client.get("/api/source/..%2F..%2Fetc%2Fpasswd").status_code == 404


def _wait(client, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/profile/{job_id}").json()
        if body["state"] in ("done", "failed", "cancelled"):
            return body
        time.sleep(0.05)
    raise AssertionError("job did not end")


def test_profile_job_runs_and_streams_phases_in_order(client) -> None:
    r = client.post("/api/profile", json={"preset": "tiny", "repeats": 2})
    assert r.status_code == 202
    job_id = r.json()["id"]
    events: list[tuple[str, dict]] = []
    with client.stream("GET", f"/api/profile/{job_id}/events") as stream:
        event = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
    assert events[-1] == ("end", {"state": "done", "error": None})
    phases = [data["phase"] for kind, data in events if kind == "progress"]
    order = {"queued": 0, "building": 1, "warmup": 2, "run": 3, "done": 4}
    seen = [p for p in phases if p in order]
    assert seen == sorted(seen, key=order.__getitem__), phases
    assert "run" in seen and seen[-1] == "done"
    body = client.get(f"/api/profile/{job_id}").json()
    assert body["state"] == "done" and body["error"] is None and body["position"] is None
    assert body["result"]["totals"]["time_ms"] > 0
    assert body["result"]["totals"]["flops"] == trace_unet("tiny").totals.flops


def test_cancelled_job_ends_cancelled(client) -> None:
    # A slow job first holds the CPU worker; the second waits in the queue and is cancelled there.
    first = client.post("/api/profile", json={"preset": "tiny", "repeats": 20}).json()["id"]
    second = client.post("/api/profile", json={"preset": "tiny", "repeats": 2}).json()["id"]
    cancelled = client.delete(f"/api/profile/{second}").json()
    assert cancelled["id"] == second
    assert _wait(client, second)["state"] == "cancelled"
    client.delete(f"/api/profile/{first}")
    assert _wait(client, first)["state"] in ("cancelled", "done")


def test_running_job_can_be_cancelled(client) -> None:
    job = client.post("/api/profile", json={"preset": "tiny", "repeats": 50, "warmup": 10}).json()["id"]
    deadline = time.monotonic() + 30
    while client.get(f"/api/profile/{job}").json()["state"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.01)
    client.delete(f"/api/profile/{job}")
    body = _wait(client, job)
    assert body["state"] in ("cancelled", "done")
    if body["state"] == "cancelled":
        assert body["error"] == "cancelled by request" and body["result"] is None


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"preset": "tiny", "device": "tpu"}, "device", "Input should be 'cpu' or 'cuda'"),
        ({"preset": "tiny", "dtype": "float16"}, "dtype", "float16 is for CUDA; use float32 or bfloat16 on the CPU"),
        ({"preset": "tiny", "repeats": 0}, "repeats", "Input should be greater than or equal to 1"),
        ({"preset": "tiny", "repeats": 51}, "repeats", "Input should be less than or equal to 50"),
    ],
)
def test_bad_profile_requests(client, body: dict, field: str, reason: str) -> None:
    r = client.post("/api/profile", json=body)
    assert r.status_code == 422
    got = r.json()
    assert got["field"] == field and got["reason"] == reason


def test_profile_too_big_for_memory_is_413(client, monkeypatch) -> None:
    import app.routes.profile as profile

    monkeypatch.setattr(profile, "available_bytes", lambda device: 2**30)
    r = client.post("/api/profile", json={"preset": "sd1"})
    assert r.status_code == 413
    body = r.json()
    assert body["field"] == "preset"
    assert "the limit here is 1.0 GiB" in body["reason"]


def test_unknown_job_is_404(client) -> None:
    for method, path in (
        ("GET", "/api/profile/nope"),
        ("DELETE", "/api/profile/nope"),
        ("GET", "/api/profile/nope/events"),
    ):
        r = client.request(method, path)
        assert r.status_code == 404
        assert r.json() == _err("id", "no profile job 'nope'")


def test_trace_over_the_time_limit_is_413(client, monkeypatch) -> None:
    monkeypatch.setattr(client.app.state.traces, "time_limit_s", 0.0)
    r = client.post("/api/trace", json={"preset": "sdxl-refiner", "batch": 2})
    assert r.status_code == 413
    assert r.json() == _err(None, "the trace ran past the limit of 0 s; try a smaller model or input")


def test_repeated_trace_bodies_take_the_fast_path(client, monkeypatch) -> None:
    body = b'{"preset": "tiny", "image_size": [256, 256]}'
    headers = {"content-type": "application/json", "accept-encoding": "gzip"}
    first = client.post("/api/trace", content=body, headers=headers)
    assert first.status_code == 200

    # The same bytes again are answered from the cache without routing or validation: resolve is never called.
    import app.routes.trace as route

    def fail(*args, **kwargs):
        raise AssertionError("the fast path should have answered")

    monkeypatch.setattr(route, "resolve", fail)
    second = client.post("/api/trace", content=body, headers=headers)
    assert second.status_code == 200
    assert second.content == first.content
    for name in ("etag", "content-encoding", "content-type", "cache-control", "content-security-policy"):
        assert second.headers[name] == first.headers[name], name
    assert (
        client.post("/api/trace", content=body, headers={**headers, "if-none-match": first.headers["etag"]}).status_code
        == 304
    )
    plain = client.post(
        "/api/trace", content=body, headers={"content-type": "application/json", "accept-encoding": "identity"}
    )
    assert "content-encoding" not in plain.headers and plain.json() == first.json()
    # Other bytes (even the same JSON spaced differently) go through the app as usual.
    with pytest.raises(AssertionError, match="fast path"):
        client.post("/api/trace", content=b'{"preset":"tiny","image_size":[256,256]}', headers=headers)


def test_fast_path_falls_through_when_the_trace_was_evicted(client) -> None:
    store = client.app.state.traces
    body = b'{"preset": "tiny", "image_size": [384, 384]}'
    assert client.post("/api/trace", content=body, headers={"content-type": "application/json"}).status_code == 200
    store.clear_memory()  # as if the LRU had dropped it
    again = client.post("/api/trace", content=body, headers={"content-type": "application/json"})
    assert again.status_code == 200 and again.json()["input"]["image_size"] == [384, 384]


def test_summary_is_the_cli_table(client) -> None:
    from sdunet_core.tracer.summary import format_summary

    r = client.post("/api/summary?depth=1", json={"preset": "sd1"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert r.text == format_summary(trace_unet("sd1"), depth=1) + "\n"
    assert "input_blocks.4 (TimestepEmbedSequential)" in r.text and "Total params: 859,520,964" in r.text
    bad = client.post("/api/summary?depth=99", json={"preset": "sd1"})
    assert bad.status_code == 422 and bad.json()["field"] == "depth"


def test_attention_nodes_state_their_score_matrix(client) -> None:
    """attn1 scores every position against every position, attn2 every position against the 77 tokens: the trace
    says how big that matrix is and what it weighs, so the page does not have to work it out."""
    body = client.post("/api/trace", json={"preset": "sd1", "sample_size": [64, 64]}).json()
    nodes = {n["path"]: n for n in body["nodes"]}
    attn = "input_blocks.1.1.transformer_blocks.0"
    self_scores = nodes[f"{attn}.attn1"]["attention"]["scores"]
    assert self_scores == {
        "shape": [1, 8, 4096, 4096],
        "elements": 8 * 4096 * 4096,
        "bytes_float32": 8 * 4096 * 4096 * 4,  # 512 MiB for one call
        "bytes_float16": 8 * 4096 * 4096 * 2,
    }
    assert nodes[f"{attn}.attn2"]["attention"]["scores"]["shape"] == [1, 8, 4096, 77]
    # At the bottom of the U the same heads see 8×8 positions.
    assert nodes["middle_block.1.transformer_blocks.0.attn1"]["attention"]["scores"]["shape"] == [1, 8, 64, 64]
    # Only the modules that compute softmax(QKᵀ/√d)·V have one.
    assert nodes[attn]["attention"]["scores"] is None
    assert nodes["input_blocks.1.1"]["attention"]["scores"] is None


def test_score_matrix_of_a_plain_attention_block_and_of_the_upscalers_attn1(client) -> None:
    """A plain attention block scores its H·W positions against each other; the x4 upscaler's attn1 has no
    self-attention, so its keys are the context's 77 tokens."""
    celeb = client.post("/api/trace", json={"preset": "ldm-celebahq"}).json()
    block = next(n for n in celeb["nodes"] if n["category"] == "attention_block")
    _, _, height, width = block["inputs"][0]["shape"]
    heads = block["attention"]["heads"]
    assert block["attention"]["scores"]["shape"] == [1, heads, height * width, height * width]
    up = client.post("/api/trace", json={"preset": "sd-x4-upscaler"}).json()
    attn1 = next(n for n in up["nodes"] if n["path"].endswith("attn1"))
    tokens = attn1["inputs"][0]["shape"][1]
    assert attn1["attention"]["scores"]["shape"] == [1, attn1["attention"]["heads"], tokens, 77]
