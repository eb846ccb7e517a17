"""POST /api/lora/detect: the whole JSON body for a small LoRA, the FLOPs at an image size, every body form, and a
4xx naming the field and the reason for every kind of bad input."""

from __future__ import annotations

import json

import pytest

from app.routes.checkpoint import MAX_BODY_BYTES
from sdunet_core.names.ids import block_weight_data
from tests.checkpoint_headers import header_bytes, preset_shapes
from tests.checkpoint_headers import make_header as checkpoint_header
from tests.lora_factory import kohya_metadata, lora_tensors, make_header

URL = "/api/lora/detect"
TO_Q = "input_blocks.1.1.transformer_blocks.0.attn1.to_q"
TO_K = "input_blocks.1.1.transformer_blocks.0.attn2.to_k"
STEM = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_"
TE = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"


def _small() -> dict:
    """Two attention projections of SD 1.x's input_blocks.1 and one text-encoder projection, rank 4, alpha 2."""
    tensors = lora_tensors("sd1", "lora", rank=4, select=lambda m: m.path in (TO_Q, TO_K))
    tensors = {k: v for k, v in tensors.items() if not k.startswith("lora_te") or "q_proj" in k}
    return make_header(tensors, kohya_metadata("sd1", rank=4, alpha=2.0))


def _post(client, body: bytes | dict, query: str = "?flops=false"):  # type: ignore[no-untyped-def]
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    return client.post(URL + query, content=content, headers={"content-type": "application/json"})


def _module(path: str, key: str, params: int, flops: int | None) -> dict:
    return {
        "path": path,
        "diffusers": "down_blocks.0.attentions.0.transformer_blocks.0." + path.split("transformer_blocks.0.")[1],
        "lora_key": key,
        "spelling": "diffusers",
        "kind": "linear",
        "algo": "lora",
        "rank": 4,
        "alpha": 2.0,
        "alpha_source": "metadata",
        "scale": 0.5,
        "params": params,
        "block": "input_blocks.1",
        "block_id": "IN01",
        "kohya_slot": 1,
        "kohya_target": "lora",
        "tucker": False,
        "dora": False,
        "flops": flops,
    }


def _expected(flops: dict[str, int] | None) -> dict:
    q, k = (flops or {}).get(TO_Q), (flops or {}).get(TO_K)
    paths = ["time_embed", *(f"input_blocks.{i}" for i in range(12)), "middle_block"]
    paths += [*(f"output_blocks.{i}" for i in range(12)), "out"]
    ids = block_weight_data().id_lists["26"]
    unet_blocks = [
        {
            "path": p,
            "id": None if p in ("time_embed", "out") else ids[paths.index(p)],
            "modules": 0,
            "params": 0,
            "rank_min": None,
            "rank_max": None,
            "flops": None if flops is None else 0,
        }
        for p in paths
    ]
    unet_blocks[2].update(modules=2, params=6912, rank_min=4, rank_max=4, flops=None if flops is None else q + k)
    metadata = {"ss_network_module": "networks.lora", "ss_network_dim": "4", "ss_network_alpha": "2.0"}
    return {
        "format": "lora",
        "format_title": "LoRA (kohya): low-rank lora_down / lora_up on the attention layers",
        "key_style": "kohya",
        "spelling": "diffusers",
        "family": "sd1",
        "family_title": "SD 1.x",
        "family_evidence": [
            "UNet modules whose shapes fit each model's layers (of 2): SD 1.x 2, SD 2.x 1, SDXL 0",
            "ss_base_model_version = 'sd_v1' agrees",
        ],
        "preset": "sd1",
        "layout": "sd1",
        "metadata": {**metadata, "ss_base_model_version": "sd_v1"},
        "network": {
            "module": "networks.lora",
            "dim": 4.0,
            "alpha": 2.0,
            "conv_dim": None,
            "conv_alpha": None,
            "algo": None,
            "base_model_version": "sd_v1",
            "architecture": None,
            "args": {},
        },
        "algos": {"lora": 3},
        "modules": [_module(TO_Q, STEM + "attn1_to_q", 2560, q), _module(TO_K, STEM + "attn2_to_k", 4352, k)],
        "text_encoder": {
            "params": 6144,
            "encoders": [{"name": "lora_te", "modules": 1, "params": 6144, "width": 768, "model": "CLIP ViT-L/14"}],
            "modules": [
                {
                    "lora_key": TE,
                    "encoder": "lora_te",
                    "algo": "lora",
                    "rank": 4,
                    "alpha": 2.0,
                    "alpha_source": "metadata",
                    "scale": 0.5,
                    "params": 6144,
                }
            ],
        },
        "unmatched": [],
        "blocks": {**dict.fromkeys(ids, 0), "BASE": 6144, "IN01": 6912},
        "block_ids": ["BASE", "IN01"],
        "id_list": "17",
        "unet_blocks": unet_blocks,
        "ranks": {"4": 2},
        "rank_min": 4,
        "rank_max": 4,
        "unet_params": 6912,
        "text_encoder_params": 6144,
        "params_added": 13056,
        "flops_added": None if flops is None else q + k,
        "flops": None
        if flops is None
        else {
            "preset": "sd1",
            "image_size": [512, 512],
            "sample_size": [64, 64],
            "batch": 1,
            "counted": "2 FLOPs per multiply-add of the unmerged modules' own layers, for one UNet forward",
        },
        "notes": [
            "the alpha of 3 modules is taken from the metadata (ss_network_alpha, conv_alpha, block_alphas), as kohya "
            "sd-scripts sets it; the tensors' own values are in the file's data"
        ],
    }


def test_detect_returns_the_whole_detection(client) -> None:
    r = _post(client, _small())
    assert r.status_code == 200, r.text
    assert r.json() == _expected(None)


def test_flops_at_an_image_size(client) -> None:
    r = _post(client, _small(), "?image_size=512")
    assert r.status_code == 200, r.text
    # 4096 tokens through 320 -> 4 -> 320; 77 context tokens through 768 -> 4 -> 320; 2 FLOPs per multiply-add.
    flops = {TO_Q: 2 * 4096 * (320 * 4 + 4 * 320), TO_K: 2 * 77 * (768 * 4 + 4 * 320)}
    assert r.json() == _expected(flops)


def test_every_body_form_gives_the_same_detection(client) -> None:
    header = _small()
    first_bytes = header_bytes(header) + b"\0" * 64
    assert _post(client, first_bytes).json() == _expected(None)
    alphas = {f"{STEM}attn1_to_q.alpha": 8.0}
    body = _post(client, {"header": header, "alphas": alphas}).json()
    q = body["modules"][0]
    assert (q["alpha"], q["alpha_source"], q["scale"]) == (8.0, "tensor", 2.0)


def test_a_preset_can_be_given(client) -> None:
    body = _post(client, _small(), "?flops=false&preset=sd2").json()
    assert body["preset"] == "sd2" and [m["path"] for m in body["modules"]] == [TO_Q]  # SD 2.x's to_k reads 1024
    assert body["unmatched"][0]["reason"].startswith(f"names {TO_K}, but its shapes do not fit")


def _err(field: str | None, reason: str) -> dict:
    return {"detail": f"{field}: {reason}" if field else reason, "field": field, "reason": reason}


@pytest.mark.parametrize(
    ("body", "query", "status", "field", "reason"),
    [
        (b"", "", 400, "body", "is empty; send the safetensors header JSON"),
        (b"{not json", "", 400, "body", "is not JSON"),
        (checkpoint_header(preset_shapes("tiny"), "model.diffusion_model."), "", 422, "header", "is a UNet checkpoint"),
        ({"decoder.conv_out.weight": {"dtype": "F16", "shape": [3, 8, 3, 3]}}, "", 422, "header", "is a VAE"),
        ({"a.lora_down.weight": {"dtype": "F16", "shape": [1]}}, "", 422, "header", "is not a LoRA"),
        ({"x": {"dtype": "F99", "shape": [1]}}, "", 422, "x.dtype", "unknown dtype 'F99'"),
        ({"header": {}, "alphas": {"a": "b"}}, "", 422, "alphas", "a: must be a finite number"),
        ({"header": {}, "other": 1}, "", 400, "body", "holds ['other'] beside header, alphas"),
        (None, "?preset=nope", 404, "preset", "unknown preset 'nope'"),
        (None, "?image_size=512&image_size=512&image_size=512", 422, "image_size", "give one size (a square) or two"),
        (None, "?image_size=8192", 413, "image_size", "[8192, 8192] is over the limit of 4096 pixels per side"),
        (None, "?image_size=500", 422, "image_size", "[500, 500] must be a multiple of the latent factor 8"),
        (None, "?batch=0", 422, "batch", "Input should be greater than or equal to 1"),
    ],
)
def test_bad_input_gets_a_4xx_naming_why(client, body, query: str, status: int, field: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    r = _post(client, _small() if body is None else body, query)
    assert r.status_code == status, r.text
    got = r.json()
    assert (got["field"], got["detail"]) == (field, f"{field}: {got['reason']}")
    assert got["reason"].startswith(reason), got["reason"]


def test_the_size_and_count_limits(client) -> None:
    headers = {"content-length": str(MAX_BODY_BYTES + 1), "content-type": "application/json"}
    r = client.post(URL, content=b"{}", headers=headers)
    assert r.status_code == 413
    assert r.json() == _err("body", f"is larger than {MAX_BODY_BYTES} bytes; send the safetensors header, not the file")
    many = {f"t{i}": {"dtype": "F16", "shape": [1]} for i in range(50_001)}
    r = _post(client, many)
    assert r.status_code == 422 and r.json() == _err("header", "holds 50001 tensors, over the limit of 50000")


def test_openapi_describes_the_detection(client) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/api/lora/detect"]["post"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/LoraDetection")
    fields = spec["components"]["schemas"]["LoraModuleOut"]["properties"]
    assert {"path", "diffusers", "lora_key", "kind", "rank", "alpha", "scale", "params", "flops"} <= set(fields)
