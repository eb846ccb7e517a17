"""POST /api/names and /api/names/block-weights: the table the page relabels its cards from, a whole block-weights
body, and 4xx errors naming the field."""

from __future__ import annotations

from sdunet_core import PRESETS
from sdunet_core.names import names_table
from sdunet_core.names.ids import block_weight_data


def test_names_is_the_table(client) -> None:
    r = client.post("/api/names", json={"preset": "sdxl-base", "image_size": [1024, 1024]})  # a /api/trace body
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == names_table(PRESETS["sdxl-base"].config)
    assert body["layout"] == "sdxl" and [x["name"] for x in body["id_lists"]] == ["12", "20"]
    module = next(m for m in body["modules"] if m["path"] == "input_blocks.4.1.transformer_blocks.1.attn2.to_k")
    assert module == {
        "path": "input_blocks.4.1.transformer_blocks.1.attn2.to_k",
        "block": "input_blocks.4",
        "class_name": "Linear",
        "kind": "linear",
        "kohya_target": "lora",
        "labels": {
            "original": "input_blocks.4.1.transformer_blocks.1.attn2.to_k",
            "diffusers": "down_blocks.1.attentions.0.transformer_blocks.1.attn2.to_k",
            "lora_diffusers": "lora_unet_down_blocks_1_attentions_0_transformer_blocks_1_attn2_to_k",
            "lora_original": "lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k",
            "block_id": "IN04",
            "merge": "IN04",
            "kohya": "5",
        },
    }


def test_names_takes_a_config_too(client) -> None:
    body = client.post("/api/names", json={"ldm_params": PRESETS["sd1"].ldm_params}).json()
    assert body["layout"] == "sd1" and body["ids"] == list(block_weight_data().id_lists["26"])


def test_block_weights_whole_body(client) -> None:
    r = client.post("/api/names/block-weights", json={"preset": "sd1", "spec": "IN04-IN08,OUT03"})
    assert r.status_code == 200, r.text
    on = {"IN04", "IN05", "IN06", "IN07", "IN08", "OUT03"}
    ids = block_weight_data().id_lists["26"]
    paths = ["time_embed", *(f"input_blocks.{i}" for i in range(12)), "middle_block"]
    paths += [*(f"output_blocks.{i}" for i in range(12)), "out"]
    blocks = [
        {"path": p, "id": i, "weight": 1.0 if i is None else float(i in on)}
        for p, i in zip(paths, [None, *ids[1:], None], strict=True)
    ]
    assert r.json() == {
        "spec": "IN04-IN08,OUT03",
        "kind": "ids",
        "scheme": "lora_block_weight",
        "id_list": None,
        "text_encoder": 0.0,
        "ids": {i: float(i in on) for i in ids},
        "blocks": blocks,
        "untouched": ["time_embed", "out"],
        "ignored": [],
        "accepted_lengths": [17, 25, 26],
        "notes": [
            "selected blocks get 1, the others 0",
            "no ID names time_embed, out: the tool leaves them at 1 (a plain LoRA has none there)",
        ],
    }


def test_block_weight_errors_name_the_field(client) -> None:
    r = client.post("/api/names/block-weights", json={"preset": "sdxl-base", "spec": "1,1,1"})
    reason = "has 3 numbers; this model accepts 12, 20"
    assert r.status_code == 422 and r.json() == {"detail": f"spec: {reason}", "field": "spec", "reason": reason}
    r = client.post("/api/names/block-weights", json={"preset": "nope", "spec": "ALL"})
    assert r.status_code == 404 and r.json()["field"] == "preset"
    r = client.post("/api/names/block-weights", json={"preset": "sd1"})
    assert r.status_code == 422 and r.json()["field"] == "spec"
    r = client.post("/api/names", json={"preset": "sd1", "config": {}})
    assert r.status_code == 422 and r.json()["field"] == "preset"
