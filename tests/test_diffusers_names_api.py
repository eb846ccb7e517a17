"""POST /api/diffusers-names: every name it gives is a real module of diffusers' UNet2DConditionModel."""

from __future__ import annotations

import pytest
import torch

from tests.diffusers_configs import DIFFUSERS_CONFIGS

diffusers = pytest.importorskip("diffusers")


def test_sd1_names_are_diffusers_modules(client) -> None:
    body = client.post("/api/diffusers-names", json={"preset": "sd1"}).json()
    assert body["supported"] is True
    with torch.device("meta"):
        model = diffusers.UNet2DConditionModel(**DIFFUSERS_CONFIGS["sd1"])
    theirs = dict(model.named_modules())
    names = body["names"]
    mapped = {ours: name for ours, name in names.items() if name is not None}
    assert len(mapped) > 550  # all but containers diffusers arranges differently (block wrappers, in_layers, ...)
    for ours, name in mapped.items():
        assert name in theirs, (ours, name)
    # Same kind of layer on both sides for the leaves that hold weights.
    assert type(theirs[names["input_blocks.1.1.transformer_blocks.0.attn2.to_k"]]).__name__ == "Linear"
    assert names["middle_block.1"] == "mid_block.attentions.0"
    assert names["out.2"] == "conv_out"


def test_plain_attention_models_are_not_supported(client) -> None:
    r = client.post("/api/diffusers-names", json={"preset": "ldm-celebahq"})
    assert r.status_code == 200
    assert r.json() == {
        "supported": False,
        "reason": "plain attention blocks: diffusers keeps them in UNet2DModel, which splits qkv into to_q/to_k/to_v",
        "names": {},
    }


def test_bad_body_names_the_field(client) -> None:
    r = client.post("/api/diffusers-names", json={"preset": "nope"})
    assert r.status_code == 404 and r.json()["field"] == "preset"
