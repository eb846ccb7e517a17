"""UNetModel against the original's numbers.

1. The shared goldens (`tests/data/*.safetensors`, made by the original CompVis code; format in `tests/data/README.md`):
   build from `unet_params`, load with strict=True, match `output` to 1e-4 of its scale. A perturbed weight and a
   flipped attention order must break the match, so the check is known to be able to fail.
2. Paths those goldens do not reach (linear projections, deeper transformers, class / sequential / continuous labels,
   disabled self-attention, num_attention_blocks, the new attention order, pooling, 1D and 3D, the codebook head):
   `ReferenceUNet` (tests/reference_unet.py) is an independent forward written from the original code, over the
   state dict by key; it shares no code with sdunet_core and reads the original yaml parameters itself.
   UNetModel must match it on seeded random weights, and the
   reference must read every key of the state dict (so the module tree has nothing more and nothing less).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from sdunet_core import UNetConfig, UNetModel
from tests.conftest import DATA
from tests.reference_unet import ReferenceUNet

TOLERANCE = 1e-4  # max |diff| / max |reference|, as the goldens' README asks
GOLDENS = ["tiny_sd1", "tiny_ldm_uncond"]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from intra-op threads, and lose a lot to them on a busy CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    assert out.shape == ref.shape, (out.shape, ref.shape)
    return ((out - ref).abs().max() / ref.abs().max()).item()


def run(model: UNetModel, inputs: dict[str, torch.Tensor | None]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(inputs["x"], inputs["timesteps"], context=inputs.get("context"), y=inputs.get("y"))


# ---- 1. the shared goldens ------------------------------------------------------------------------------------
def load_golden(name: str) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    """(meta json, state dict, inputs by name, the original's output)."""
    meta = json.loads((DATA / f"{name}.json").read_text())
    tensors = load_file(DATA / f"{name}.safetensors")
    state = {k.removeprefix("state_dict."): v for k, v in tensors.items() if k.startswith("state_dict.")}
    inputs = {k.removeprefix("input."): v for k, v in tensors.items() if k.startswith("input.")}
    return meta, state, inputs, tensors["output"]


def golden_model(params: dict[str, Any], state: dict[str, torch.Tensor]) -> UNetModel:
    model = UNetModel(UNetConfig.from_ldm(params))
    model.load_state_dict(state, strict=True)
    return model


@pytest.mark.parametrize("name", GOLDENS)
def test_golden_matches_original(name: str) -> None:
    meta, state, inputs, expected = load_golden(name)
    model = golden_model(meta["unet_params"], state)
    assert sum(p.numel() for p in model.parameters()) == meta["num_parameters"]
    assert len(model.state_dict()) == meta["state_dict_keys"]
    assert {f"input.{k}": list(v.shape) for k, v in inputs.items()} == meta["inputs"]
    assert list(expected.shape) == meta["output_shape"]
    assert relative_error(run(model, inputs), expected) < TOLERANCE


@pytest.mark.parametrize("name", GOLDENS)
def test_golden_fails_on_one_perturbed_weight(name: str) -> None:
    """The comparison is sharp enough to see one weight of one attention layer moved by 0.05."""
    meta, state, inputs, expected = load_golden(name)
    key = next(k for k in state if k.endswith(("attn2.to_k.weight", "qkv.weight")))
    state = dict(state)
    state[key] = state[key].clone()
    state[key].view(-1)[0] += 0.05
    assert relative_error(run(golden_model(meta["unet_params"], state), inputs), expected) > 10 * TOLERANCE


def test_golden_fails_on_the_wrong_attention_order() -> None:
    meta, state, inputs, expected = load_golden("tiny_ldm_uncond")
    assert not meta["unet_params"].get("use_new_attention_order", False)
    cfg = UNetConfig.from_ldm(meta["unet_params"])
    model = UNetModel(dataclasses.replace(cfg, use_new_attention_order=True))
    model.load_state_dict(state, strict=True)
    assert relative_error(run(model, inputs), expected) > 10 * TOLERANCE


def test_golden_fails_without_scale_shift_norm() -> None:
    """Dropping scale-shift changes emb_layers' shape: strict loading refuses the checkpoint."""
    meta, state, _, _ = load_golden("tiny_ldm_uncond")
    cfg = UNetConfig.from_ldm(meta["unet_params"])
    assert cfg.use_scale_shift_norm
    with pytest.raises(RuntimeError, match="emb_layers"):
        UNetModel(dataclasses.replace(cfg, use_scale_shift_norm=False)).load_state_dict(state, strict=True)


# ---- 2. an independent reference forward (tests/reference_unet.py) ------------------------------------------

# Each case: the original yaml parameters, and the input's spatial size.
BASE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 2,
    "model_channels": 16,
    "norm_groups": 8,
    "num_res_blocks": 1,
    "channel_mult": [1, 2],
    "attention_resolutions": [1, 2],
}
# fmt: off
CASES: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    # SD 2.x: linear projections, head width, two transformer blocks per level.
    "linear_depth2": (
        {"use_spatial_transformer": True, "use_linear_in_transformer": True, "num_head_channels": 8,
         "transformer_depth": 2, "context_dim": 12, "legacy": False},
        (8, 8),
    ),
    # SDXL (sgm code, no use_spatial_transformer flag): per-level depth, deeper middle, pooled-vector labels.
    "sgm_sequential": (
        {"num_classes": "sequential", "adm_in_channels": 10, "use_linear_in_transformer": True,
         "num_head_channels": 8, "transformer_depth": [1, 2, 2], "transformer_depth_middle": 3, "context_dim": 12,
         "channel_mult": [1, 2, 2], "num_res_blocks": [1, 2, 1], "attention_resolutions": [2, 4]},
        (8, 8),
    ),
    # SD x4 upscaler: class labels, conv projections, self-attention disabled per level, fewer attention blocks.
    "classes_disabled_self_attention": (
        {"use_spatial_transformer": True, "num_heads": 2, "context_dim": 12, "num_classes": 7,
         "disable_self_attentions": [True, False], "disable_middle_self_attn": True, "num_res_blocks": 2,
         "num_attention_blocks": [1, 2], "legacy": False},
        (8, 8),
    ),
    # Plain attention in the new order, continuous labels, pooling instead of conv resampling, more heads going up.
    "continuous_new_order_pool": (
        {"num_classes": "continuous", "use_new_attention_order": True, "conv_resample": False, "num_heads": 2,
         "num_heads_upsample": 4, "channel_mult": [1, 2, 2], "attention_resolutions": [2, 4]},
        (8, 8),
    ),
    # legacy=False: plain attention gets width // num_heads per head, so num_heads_upsample has no effect.
    "legacy_false_heads_upsample": (
        {"num_heads": 2, "num_heads_upsample": 4, "legacy": False, "use_scale_shift_norm": True},
        (8, 8),
    ),
    "dims1_updown": (
        {"dims": 1, "num_head_channels": 8, "resblock_updown": True, "use_scale_shift_norm": True},
        (16,),
    ),
    "dims3_conv": ({"dims": 3, "num_heads": 2, "num_classes": 5}, (3, 8, 8)),
    "dims3_updown_new_order": (
        {"dims": 3, "num_head_channels": 8, "resblock_updown": True, "use_new_attention_order": True},
        (2, 8, 8),
    ),
    # An odd model_channels: the time embedding's sinusoid is padded with a zero column.
    "odd_width": ({"model_channels": 5, "norm_groups": 5, "num_heads": 1, "use_scale_shift_norm": True}, (4, 4)),
    # VQ models: the codebook head instead of the output conv.
    "codebook_head": (
        {"use_spatial_transformer": True, "num_heads": 2, "context_dim": 12, "n_embed": 11, "legacy": False},
        (8, 8),
    ),
}
# fmt: on


def random_state(model: UNetModel, seed: int) -> dict[str, torch.Tensor]:
    """Seeded weights scaled by fan-in, so activations and attention logits stay O(1) and nothing is zero."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, t in model.state_dict().items():
        w = torch.randn(t.shape, generator=g)
        if t.dim() > 1:
            w = w / math.sqrt(t[0].numel())
        elif name.endswith("weight"):  # norm scales around 1
            w = 1 + 0.3 * w
        else:
            w = 0.3 * w
        out[name] = w
    return out


def case_inputs(params: dict[str, Any], size: tuple[int, ...], seed: int) -> dict[str, torch.Tensor | None]:
    g = torch.Generator().manual_seed(seed)
    batch = 2
    nc = params.get("num_classes")
    y: torch.Tensor | None = None
    if nc == "sequential":
        y = torch.randn(batch, params["adm_in_channels"], generator=g)
    elif nc == "continuous":
        y = torch.rand(batch, 1, generator=g)
    elif nc is not None:
        y = torch.randint(0, nc, (batch,), generator=g)
    ctx = params.get("context_dim")
    return {
        "x": torch.randn(batch, params["in_channels"], *size, generator=g),
        "timesteps": torch.tensor([3.0, 917.5]),
        "context": torch.randn(batch, 5, ctx, generator=g) if ctx else None,
        "y": y,
    }


def reference_case(name: str) -> tuple[dict[str, Any], UNetModel, dict[str, torch.Tensor], dict[str, Any]]:
    params = {**BASE, **CASES[name][0]}
    model = UNetModel(UNetConfig.from_ldm(params))
    state = random_state(model, seed=0)
    model.load_state_dict(state, strict=True)
    return params, model, state, case_inputs(params, CASES[name][1], seed=1)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_the_independent_reference(name: str) -> None:
    params, model, state, inputs = reference_case(name)
    ref = ReferenceUNet(params, state)
    with torch.no_grad():
        expected = ref(**inputs)
    assert ref.read == set(state), f"keys the reference never read: {sorted(set(state) - ref.read)[:5]}"
    out = run(model, inputs)
    out_channels = params.get("n_embed") or params["out_channels"]
    assert out.shape == (2, out_channels, *CASES[name][1])
    assert relative_error(out, expected) < TOLERANCE


@pytest.mark.parametrize("name", GOLDENS)
def test_reference_reproduces_the_shared_goldens(name: str) -> None:
    """The reference itself against the original code's output: its reading of openaimodel.py is checked too."""
    meta, state, inputs, expected = load_golden(name)
    ref = ReferenceUNet(meta["unet_params"], state)
    with torch.no_grad():
        out = ref(**inputs)
    assert ref.read == set(state)
    assert relative_error(out, expected) < TOLERANCE


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("continuous_new_order_pool", {"use_new_attention_order": False}),
        ("dims3_updown_new_order", {"use_new_attention_order": False}),
        ("continuous_new_order_pool", {"num_heads_upsample": -1}),
        ("legacy_false_heads_upsample", {"legacy": True}),
        ("linear_depth2", {"num_head_channels": 4}),
        ("classes_disabled_self_attention", {"num_heads": 4}),
    ],
)
def test_reference_comparison_can_fail(name: str, change: dict[str, Any]) -> None:
    """The reference given one changed option (same weights) no longer matches: every option above is seen."""
    params, model, state, inputs = reference_case(name)
    with torch.no_grad():
        expected = ReferenceUNet({**params, **change}, state)(**inputs)
    assert relative_error(run(model, inputs), expected) > 10 * TOLERANCE
