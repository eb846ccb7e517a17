"""GET /api/compare and /api/scaling: numbers checked against traces made directly by the library."""

from __future__ import annotations

import pytest

from sdunet_core.tracer.trace import trace_unet


@pytest.fixture(scope="module")
def sd1_vs_sdxl(client) -> dict:
    r = client.get("/api/compare", params={"a": "sd1", "b": "sdxl-base"})
    assert r.status_code == 200
    return r.json()


def test_compare_totals_match_the_traces(sd1_vs_sdxl) -> None:
    sd1, sdxl = trace_unet("sd1"), trace_unet("sdxl-base")
    assert sd1_vs_sdxl["a"]["totals"] == sd1.totals.model_dump()
    assert sd1_vs_sdxl["b"]["totals"] == sdxl.totals.model_dump()
    by_stage = {row["key"]: row for row in sd1_vs_sdxl["by_stage"]}
    assert sum(r["a"]["flops"] for r in by_stage.values()) == sd1.totals.flops
    assert sum(r["b"]["params"] for r in by_stage.values()) == sdxl.totals.params
    down = sum(sd1.node(f"input_blocks.{i}").flops for i in range(12))
    assert by_stage["down"]["a"]["flops"] == down
    assert by_stage["mid"]["b"]["params"] == sdxl.node("middle_block").params


def test_compare_by_kind_counts(sd1_vs_sdxl) -> None:
    kinds = {row["key"]: row for row in sd1_vs_sdxl["by_kind"]}
    # SD 1.x: 16 SpatialTransformers of depth 1; SDXL: 11 of depths 2 and 10 -> 4*2 + 1*... = 70 transformer blocks.
    assert kinds["spatial_transformer"]["a"]["count"] == 16
    assert kinds["transformer_block"]["a"]["count"] == 16
    assert kinds["spatial_transformer"]["b"]["count"] == 11
    assert kinds["transformer_block"]["b"]["count"] == 2 * 2 + 2 * 10 + 10 + 3 * 2 + 3 * 10
    assert kinds["resblock"]["a"]["count"] == 22 and kinds["resblock"]["b"]["count"] == 17


def test_compare_counts_each_downsample_once(sd1_vs_sdxl) -> None:
    # SD 1.x has three Downsample layers, one per level but the last (3x3 convs at 320, 640 and 1280 channels).
    down = {row["key"]: row for row in sd1_vs_sdxl["by_kind"]}["downsample"]["a"]
    sd1 = trace_unet("sd1")
    layers = [n for n in sd1.nodes if n.kind == "Downsample"]
    assert down["count"] == len(layers) == 3
    assert down["params"] == sum(n.params for n in layers) == 19_355_840
    assert down["flops"] == sum(n.flops for n in layers)
    assert round(down["flops"] / 1e9, 2) == 5.66


def test_compare_names_the_structural_differences(sd1_vs_sdxl) -> None:
    diffs = {d["where"]: d for d in sd1_vs_sdxl["differences"]}

    def parts(side: list[dict] | None) -> list[list[tuple]] | None:
        if side is None:
            return None
        return [[(p["category"], p["depth"]) for p in block["parts"]] for block in side]

    res, st = ("resblock", None), "spatial_transformer"
    # SDXL has no attention at the highest resolution ...
    assert parts(diffs["down.0"]["a"])[0] == [res, (st, 1)] and parts(diffs["down.0"]["b"])[0] == [res]
    # ... and stacks ten transformer blocks at the lowest, in the middle block too.
    assert parts(diffs["down.2"]["b"])[0] == [res, (st, 10)]
    assert parts(diffs["mid"]["b"]) == [[res, (st, 10), res]]
    assert diffs["down.3"]["b"] is None  # SDXL has three levels
    assert [b["path"] for b in diffs["down.0"]["b"]] == ["input_blocks.1", "input_blocks.2", "input_blocks.3"]


def test_compare_same_model_has_no_differences(client) -> None:
    body = client.get("/api/compare", params={"a": "sd2", "b": "sd2-v"}).json()
    assert body["differences"] == []
    assert body["a"]["totals"]["params"] == body["b"]["totals"]["params"]


def test_scaling_points_match_traces(client) -> None:
    r = client.get("/api/scaling", params={"preset": "sd1", "sizes": "512,256"})
    assert r.status_code == 200
    points = r.json()["points"]
    assert [p["image_size"] for p in points] == [[256, 256], [512, 512]]
    for p in points:
        t = trace_unet("sd1", sample_size=(p["image_size"][0] // 8,) * 2).totals
        assert p["flops"] == t.flops and p["attention_flops"] == t.attention_flops
        assert p["other_flops"] == t.flops - t.attention_flops
        assert p["peak_memory_bytes"] == t.peak_memory_bytes
        assert p["peak_activation_bytes_fused"] == t.peak_activation_bytes_fused < p["peak_activation_bytes"]
    # Attention grows with the square of the token count: 4x the pixels -> more than 4x the attention FLOPs.
    assert points[1]["attention_flops"] > 4 * points[0]["attention_flops"]
    assert points[1]["other_flops"] == pytest.approx(4 * points[0]["other_flops"], rel=0.05)


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/api/compare", {"a": "sd1", "b": "nope"}, 404, "b"),
        ("/api/compare", {"a": "sd1"}, 422, "b"),
        ("/api/compare", {"a": "sd1", "b": "sd2", "image_size": 100}, 422, "image_size"),
        ("/api/scaling", {"preset": "sd1", "sizes": "a,b"}, 422, "sizes"),
        ("/api/scaling", {"preset": "sd1", "sizes": "100"}, 422, "sizes"),
        ("/api/scaling", {"preset": "sd1", "sizes": ",".join(["256"] * 13)}, 413, "sizes"),
        ("/api/scaling", {"preset": "sd1", "sizes": "8192"}, 413, "sizes"),
        ("/api/scaling", {"preset": "nope"}, 404, "preset"),
    ],
)
def test_bad_analysis_requests(client, path: str, params: dict, status: int, field: str) -> None:
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["field"] == field and body["detail"] == f"{field}: {body['reason']}"


# ---- a variant against its parent, block by block ------------------------------------------------------------------
def test_bk_sdm_base_against_sd14_block_by_block(client) -> None:
    body = client.get("/api/compare", params={"b": "bk-sdm-base", "image_size": 512}).json()
    assert body["a"]["preset"] == "sd1" and body["b"]["preset"] == "bk-sdm-base"  # a defaults to b's parent
    total = {row["key"]: row for row in body["saved"]}["total"]
    # BK-SDM's paper: 859.5 M -> 579.4 M parameters, 338.6 -> 223.7 G MACs at 512² without the attention matmuls.
    assert (round(total["params_a"] / 1e6, 1), round(total["params_b"] / 1e6, 1)) == (859.5, 579.4)
    assert round(total["macs_without_attention_a"] / 1e9, 1) == 338.6
    assert round(total["macs_without_attention_b"] / 1e9, 1) == 223.7
    sd1, bk = trace_unet("sd1"), trace_unet("bk-sdm-base")
    assert total["params_saved"] == sd1.totals.params - bk.totals.params
    assert total["macs_saved"] == sd1.totals.macs - bk.totals.macs
    # One res/attention pair per level is gone on the way down and on the way up; the rest is unchanged.
    removed = [m for m in body["blocks"] if m["status"] == "removed"]
    assert [m["a"] for m in removed] == [
        *("input_blocks.2", "input_blocks.5", "input_blocks.8", "input_blocks.11"),
        *("output_blocks.1", "output_blocks.4", "output_blocks.7", "output_blocks.10"),
    ]
    assert all(m["b"] is None and m["b_parts"] is None for m in removed)
    assert {m["status"] for m in body["blocks"]} == {"same", "removed"}
    assert sum(m["params_saved"] for m in body["blocks"]) == total["params_saved"]
    assert sum(m["macs_saved_without_attention"] for m in body["blocks"]) == total["macs_saved_without_attention"]
    by_stage = {row["key"]: row for row in body["saved"]}
    assert by_stage["mid"]["params_saved"] == 0 and by_stage["embed"]["params_saved"] == 0
    assert by_stage["down"]["params_saved"] + by_stage["up"]["params_saved"] == total["params_saved"]


def test_removed_middle_block_and_level_are_removed_not_different(client) -> None:
    body = client.get("/api/compare", params={"a": "sd1", "b": "bk-sdm-tiny"}).json()
    removed = {m["a"] for m in body["blocks"] if m["status"] == "removed"}
    assert {"middle_block", "input_blocks.9", "input_blocks.10", "input_blocks.11"} <= removed
    assert {"output_blocks.0", "output_blocks.1", "output_blocks.2"} <= removed
    levels = {d["where"]: d["status"] for d in body["differences"]}
    assert levels["mid"] == levels["down.3"] == levels["up.3"] == "removed"
    assert {row["key"]: row for row in body["saved"]}["mid"]["params_saved"] == trace_unet("sd1").node(
        "middle_block"
    ).params
    # Against SDXL, SSD-1B keeps every block: shallower transformers and a lone middle ResBlock are "different".
    ssd = client.get("/api/compare", params={"b": "ssd-1b"}).json()
    assert ssd["a"]["preset"] == "sdxl-base"
    changed = {m["a"]: m for m in ssd["blocks"] if m["status"] != "same"}
    assert {m["status"] for m in changed.values()} == {"different"}
    middle = changed["middle_block"]
    assert [p["category"] for p in middle["a_parts"]] == ["resblock", "spatial_transformer", "resblock"]
    assert [p["category"] for p in middle["b_parts"]] == ["resblock"]


def test_compare_without_a_needs_a_variant(client) -> None:
    r = client.get("/api/compare", params={"b": "sd1"})
    assert r.status_code == 422 and r.json()["field"] == "a"


def test_compare_rows_carry_their_stage_and_level(sd1_vs_sdxl) -> None:
    # The page reads {stage, level}, never the key's text; the key stays as the row's name.
    rows = [*sd1_vs_sdxl["by_level"], *sd1_vs_sdxl["differences"]]
    for row in rows:
        name = row["key"] if "key" in row else row["where"]
        assert name == ("mid" if row["stage"] == "mid" else f"{row['stage']}.{row['level']}"), row
    places = {(r["stage"], r["level"]) for r in sd1_vs_sdxl["by_level"]}
    assert ("mid", None) in places and ("down", 0) in places and ("up", 2) in places
