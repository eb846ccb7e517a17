"""Open a control model's file: a ControlNet (both layouts), a T2I-Adapter or a control-LoRA, from its header alone.

`detect_control(header)` answers None for a file that holds none of them (a UNet, a LoRA, a VAE), and otherwise a
`ControlDetectionReport`: what kind of control model it is, its layout and prefix, the family of the UNet it steers,
where it injects into that UNet (`InjectionPoint`s), and its size. What the names and shapes say:

- **ControlNet**, original layout (lllyasviel/ControlNet `cldm/cldm.py`): `input_hint_block.0.weight` beside
  `zero_convs.0.0.weight`, under `control_model.` (a ControlLDM checkpoint) or no prefix; diffusers' layout
  (`ControlNetModel`): `controlnet_cond_embedding.conv_in.weight` beside `controlnet_down_blocks.0.weight`. The
  tensors are compared with `ControlNetModel` of the ControlNet preset they fit (hint and latent channels read
  from the file), as `detect_unet` compares a UNet: missing, unexpected and mismatched keys in the file's names.
- **T2I-Adapter** (TencentARC/T2I-Adapter `ldm/modules/encoders/adapter.py` and `Adapter/models/adapters.py`;
  diffusers `T2IAdapter`): the full adapter (`conv_in`, `body.N.block1/block2`, `body.N.in_conv` where the width
  changes; diffusers `adapter.conv_in`, `adapter.body.I.resnets.J.block1`, `adapter.body.I.in_conv`), the light
  one (`body.I.in_conv`, `body.I.body.J.block1`, `body.I.out_conv`; diffusers `adapter.body.I.resnets.J`) and the
  SDXL one (pixel-unshuffle by 16, one downsampling block). Four feature maps, added to the UNet's encoder: for
  SD 1.x after `input_blocks.2, 5, 8, 11` (image / 8, 16, 32, 64; the original adds them where `(i + 1) % 3 == 0`);
  for SDXL after `input_blocks.3, 5, 8` and the middle block (image / 16, 16, 32, 32; diffusers'
  `down_intrablock_additional_residuals`).
- **control-LoRA** (Stability AI's control-LoRAs, read by ComfyUI `comfy/controlnet.py` `ControlLora`): a
  `lora_controlnet` marker, the ControlNet's own parts as full tensors (hint encoder, zero convs, norms, biases) and
  every large weight of the encoder copy as a low-rank pair `<module>.up` / `<module>.down`, added to the base
  UNet's weight when the ControlNet is built. It injects where a ControlNet of its family does.

Nothing here reads tensor data, and nothing imports the web app.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .controlnet import ControlNetConfig
from .controlnet_keys import controlnet_keymap, controlnet_keymap_from_diffusers
from .controlnet_presets import CONTROLNET_PRESETS
from .diffusers_keys import KeyMap
from .errors import ConfigError
from .header import TensorInfo, validate_header
from .plan import plan_blocks, top_level_of
from .presets import PRESETS
from .schema import UNetConfigModel

ControlKind = Literal["controlnet", "t2i_adapter", "control_lora"]
Layout = Literal["ldm", "diffusers"]
Family = Literal["ldm", "sd1", "sd2", "sdxl", "tiny"]

# Top-level names of a ControlNet without a prefix, per layout (a file may hold other models beside it).
_LDM_TOP = frozenset(
    {"time_embed", "label_emb", "input_blocks", "zero_convs", "input_hint_block", "middle_block", "middle_block_out"}
)
_DIFFUSERS_TOP = frozenset(
    {
        "conv_in",
        "time_proj",
        "time_embedding",
        "class_embedding",
        "add_embedding",
        "add_time_proj",
        "controlnet_cond_embedding",
        "down_blocks",
        "controlnet_down_blocks",
        "mid_block",
        "controlnet_mid_block",
    }
)
# Two tensors every ControlNet has, per layout.
_ANCHORS: dict[Layout, tuple[str, str]] = {
    "ldm": ("input_hint_block.0.weight", "zero_convs.0.0.weight"),
    "diffusers": ("controlnet_cond_embedding.conv_in.weight", "controlnet_down_blocks.0.weight"),
}
# The context width of a family's cross-attention (what tells SD 1.x from SD 2.x when the widths agree).
_CONTEXT_FAMILY = {768: "sd1", 1024: "sd2", 2048: "sdxl"}
_METADATA_CHARS = 200
_METADATA_ENTRIES = 64


class InjectionPoint(BaseModel):
    """Where one output of the control model is added to the UNet it steers."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(description="its position among the control model's outputs")
    target: str = Field(description="the UNet block whose output it is added to (`input_blocks.4`, `middle_block`)")
    added_to: Literal["skip", "middle", "encoder"] = Field(
        description="`skip`: a ControlNet residual added to the skip the up stage concatenates; `middle`: added to "
        "the middle block's output; `encoder`: a T2I-Adapter feature added to the down stage's running tensor "
        "after that block (which the skip keeps too)"
    )
    factor: int = Field(description="downsample factor relative to the latent")
    image_factor: int = Field(description="downsample factor relative to the image (the latent's times 8)")
    channels: int = Field(description="channels of the tensor added")


class AdapterFacts(BaseModel):
    """A T2I-Adapter's settings, read from its shapes."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["full_adapter", "full_adapter_xl", "light_adapter"] = Field(
        description="diffusers' `adapter_type`: the full adapter (SD 1.x), its SDXL form, or the light one"
    )
    in_channels: int = Field(description="channels of the control image (3 RGB, 1 for sketches and edges)")
    unshuffle_factor: int = Field(description="the pixel-unshuffle that opens the adapter (8, or 16 for SDXL)")
    channels: list[int] = Field(description="widths of its blocks, one feature map each")
    num_res_blocks: int = Field(description="residual blocks per block")


class ControlLoraFacts(BaseModel):
    """A control-LoRA's low-rank part."""

    model_config = ConfigDict(extra="forbid")

    ranks: list[int] = Field(description="the distinct ranks of its up/down pairs")
    lora_modules: int = Field(description="modules given as a low-rank pair (added to the base UNet's weight)")
    full_tensors: int = Field(description="tensors given in full (hint encoder, zero convs, norms, biases, ...)")
    lora_parameters: int = Field(description="parameters in the up/down pairs")


class ControlMismatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="the tensor, in the file's own naming")
    expected: list[int] = Field(description="its shape in ControlNetModel(config)")
    found: list[int] = Field(description="its shape in the file")


class ControlDetectionReport(BaseModel):
    """What /api/checkpoint/detect says of a ControlNet, T2I-Adapter or control-LoRA file."""

    model_config = ConfigDict(extra="forbid")

    kind: ControlKind = Field(description="`controlnet`, `t2i_adapter` or `control_lora`")
    layout: Layout = Field(description="`ldm`: the original names; `diffusers`: diffusers' names")
    prefix: str = Field(description="what the control model's tensor names start with (`control_model.`, ``, ...)")
    family: Family | None = Field(description="the family of the UNet it steers; null when the shapes cannot tell")
    base_preset: str | None = Field(description="the UNet preset of that family it steers")
    preset: str | None = Field(
        description="ControlNets: the ControlNet preset whose state dict has exactly these shapes"
    )
    exact: bool | None = Field(
        description="ControlNets: loads into ControlNetModel(config) with strict=True once the prefix is dropped"
    )
    config: UNetConfigModel | None = Field(  # type: ignore[valid-type]
        description="ControlNets and control-LoRAs: the UNet whose encoder it copies, in our field names"
    )
    hint_channels: int | None = Field(description="channels of the control image (ControlNets, control-LoRAs)")
    missing: list[str] = Field(description="ControlNets: tensors ControlNetModel(config) has and the file lacks")
    unexpected: list[str] = Field(description="ControlNets: tensors of the file that ControlNetModel(config) lacks")
    mismatched: list[ControlMismatch] = Field(description="ControlNets: tensors of both whose shapes differ")
    adapter: AdapterFacts | None = Field(description="T2I-Adapters: the adapter's settings")
    lora: ControlLoraFacts | None = Field(description="control-LoRAs: the low-rank part")
    injections: list[InjectionPoint] = Field(description="where each of its outputs lands in the UNet")
    num_parameters: int = Field(description="parameters of the control model's tensors in the file")
    bytes_by_part: dict[str, dict[str, int]] = Field(description="top-level part -> dtype -> bytes in the file")
    bytes_by_dtype: dict[str, int] = Field(description="dtype -> bytes of the control model's tensors")
    total_bytes: int = Field(description="bytes of the control model's tensors")
    notes: list[str] = Field(description="what the shapes could not decide, and how it was decided")
    other_keys: dict[str, int] = Field(description="tensors beside the control model, counted by their first name part")
    metadata: dict[str, str] = Field(description="the header's __metadata__, cut to 64 entries of 200 characters")


# ---- finding the control model --------------------------------------------------------------------------------------
def detect_control(header: dict[str, Any]) -> ControlDetectionReport | None:
    """The control model in a safetensors-style header, or None when the file holds none."""
    tensors, metadata = validate_header(header)
    meta = {k[:_METADATA_CHARS]: v[:_METADATA_CHARS] for k, v in list(metadata.items())[:_METADATA_ENTRIES]}
    if any(name.rpartition(".")[2] == "lora_controlnet" for name in tensors):
        return _control_lora(tensors, meta)
    found = _find_controlnet(tensors)
    if found is not None:
        prefix, layout = found
        # A control-LoRA saved without its marker still gives its low-rank pairs away.
        if layout == "ldm" and any(n.startswith(prefix) and n.endswith((".up", ".down")) for n in tensors):
            return _control_lora(tensors, meta, prefix)
        return _controlnet(tensors, prefix, layout, meta)
    found_adapter = _find_adapter(tensors)
    if found_adapter is not None:
        return _adapter(tensors, *found_adapter, meta)
    return None


def _find_controlnet(tensors: dict[str, TensorInfo]) -> tuple[str, Layout] | None:
    candidates: list[tuple[str, Layout]] = []
    for name in tensors:
        for layout, (first, second) in _ANCHORS.items():
            if name.endswith(first):
                prefix = name[: -len(first)]
                if (not prefix or prefix.endswith(".")) and prefix + second in tensors:
                    candidates.append((prefix, layout))
    if not candidates:
        return None
    # The usual places first (none, then the ControlLDM's), then the shortest prefix.
    usual = ("", "control_model.", "controlnet.")
    candidates.sort(key=lambda c: (usual.index(c[0]) if c[0] in usual else len(usual), len(c[0]), c[0]))
    return candidates[0]


def _split(
    tensors: dict[str, TensorInfo], prefix: str, top: frozenset[str] | None
) -> tuple[dict[str, TensorInfo], dict[str, int]]:
    """(the control model's tensors without the prefix, the other tensors counted by their first name part)."""
    own: dict[str, TensorInfo] = {}
    other: dict[str, int] = defaultdict(int)
    for name, info in tensors.items():
        local = name[len(prefix) :] if name.startswith(prefix) else None
        if local is None or (not prefix and top is not None and local.split(".", 1)[0] not in top):
            other[name.split(".", 1)[0]] += 1
        else:
            own[local] = info
    return own, dict(sorted(other.items()))


def _sizes(tensors: dict[str, TensorInfo]) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    parts: dict[str, dict[str, int]] = {}
    dtypes: dict[str, int] = defaultdict(int)
    for key, info in tensors.items():
        part = top_level_of(key) or key
        per = parts.setdefault(part, {})
        per[info.dtype] = per.get(info.dtype, 0) + info.nbytes
        dtypes[info.dtype] += info.nbytes
    return parts, dict(dtypes)


def _base(report: dict[str, Any], tensors: dict[str, TensorInfo]) -> dict[str, Any]:
    parts, dtypes = _sizes(tensors)
    defaults: dict[str, Any] = {
        "preset": None,
        "exact": None,
        "config": None,
        "hint_channels": None,
        "missing": [],
        "unexpected": [],
        "mismatched": [],
        "adapter": None,
        "lora": None,
        "notes": [],
    }
    return {
        **defaults,
        **report,
        "num_parameters": sum(i.numel for i in tensors.values()),
        "bytes_by_part": parts,
        "bytes_by_dtype": dtypes,
        "total_bytes": sum(dtypes.values()),
    }


# ---- ControlNet ----------------------------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def _control_shapes(config: ControlNetConfig) -> dict[str, tuple[int, ...]]:
    import torch

    from .controlnet import ControlNetModel

    with torch.device("meta"):
        model = ControlNetModel(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@dataclasses.dataclass(frozen=True)
class _Candidate:
    """A ControlNet a file may be: a ControlNet preset (`name`), or a ControlNet on a UNet preset."""

    name: str | None
    config: ControlNetConfig
    family: str
    base_preset: str


@lru_cache(maxsize=1)
def _all_candidates() -> tuple[_Candidate, ...]:
    out = [_Candidate(p.name, p.config, p.family, p.base_preset) for p in CONTROLNET_PRESETS.values()]
    for name, preset in PRESETS.items():
        if not preset.config.use_spatial_transformer:
            continue
        try:
            config = ControlNetConfig(preset.config)
        except ConfigError:  # no middle block
            continue
        if all(c.config != config for c in out):  # sd2-v is sd2's network: one candidate for both
            out.append(_Candidate(None, config, preset.family, name))
    return tuple(out)


def _candidates(shapes: dict[str, tuple[int, ...]]) -> list[_Candidate]:
    """The candidates with the file's width and number of zero convs (all of them when none has)."""
    conv_in = shapes.get("input_blocks.0.0.weight")
    zero_convs = {k.split(".")[1] for k in shapes if k.startswith("zero_convs.")}
    fitting = [
        c
        for c in _all_candidates()
        if conv_in and c.config.unet.model_channels == conv_in[0] and c.config.num_injections - 1 == len(zero_convs)
    ]
    return fitting or list(_all_candidates())


def _fit(config: ControlNetConfig, shapes: dict[str, tuple[int, ...]]) -> ControlNetConfig:
    """The ControlNet with the hint and latent channels the file has (inpainting and 1-channel hints)."""
    hint = shapes.get("input_hint_block.0.weight")
    latent = shapes.get("input_blocks.0.0.weight")
    unet = config.unet
    if latent is not None and len(latent) >= 2 and latent[1] != unet.in_channels:
        unet = dataclasses.replace(unet, in_channels=latent[1], out_channels=unet.out_channels)
    hint_channels = hint[1] if hint is not None and len(hint) >= 2 else config.hint_channels
    return dataclasses.replace(config, unet=unet, hint_channels=hint_channels)


def _injections_of(config: ControlNetConfig) -> list[InjectionPoint]:
    downs = [b for b in plan_blocks(config.unet) if b.stage in ("down", "mid")]
    return [
        InjectionPoint(
            index=i,
            target=b.path,
            added_to="middle" if b.stage == "mid" else "skip",
            factor=b.factor,
            image_factor=b.factor * 8,
            channels=b.out_channels,
        )
        for i, b in enumerate(downs)
    ]


def _controlnet(
    tensors: dict[str, TensorInfo], prefix: str, layout: Layout, metadata: dict[str, str]
) -> ControlDetectionReport:
    own, other = _split(tensors, prefix, _LDM_TOP if layout == "ldm" else _DIFFUSERS_TOP)
    keymap: KeyMap | None = controlnet_keymap_from_diffusers(own) if layout == "diffusers" else None
    untranslated: list[str] = []
    shapes: dict[str, tuple[int, ...]] = {}
    for name, info in own.items():
        original = keymap.from_diffusers(name) if keymap is not None else name
        if original is None:
            untranslated.append(name)
        else:
            shapes[original] = info.shape

    # The ControlNet the file fits best, among the presets and a ControlNet on every other UNet preset (the
    # variants too): most tensors of equal name and shape, fewest differences.
    def score(candidate: _Candidate) -> tuple[int, int]:
        expected = _control_shapes(_fit(candidate.config, shapes))
        same = sum(1 for k, s in shapes.items() if expected.get(k) == s)
        return same, -len(set(expected) ^ set(shapes))

    best = max(_candidates(shapes), key=score)
    config = _fit(best.config, shapes)
    expected = _control_shapes(config)
    own_map = controlnet_keymap(config) if layout == "diffusers" else None

    def named(original: str) -> str:
        return (own_map.to_diffusers(original) if own_map is not None else None) or original

    missing = [named(k) for k in expected if k not in shapes]
    unexpected = sorted([*untranslated, *(named(k) for k in shapes if k not in expected)])
    mismatched = [
        ControlMismatch(key=named(k), expected=list(expected[k]), found=list(shapes[k]))
        for k in expected
        if k in shapes and shapes[k] != expected[k]
    ]
    exact = not (missing or unexpected or mismatched)
    notes: list[str] = []
    preset_name: str | None = None
    what = f"preset {best.name}'s" if best.name else f"those of a ControlNet on {best.base_preset}"
    if exact and config == best.config and best.name:
        preset_name = best.name
        notes.append(f"the shapes equal {what}")
    elif exact:
        changed = [f"hint_channels={config.hint_channels}"] if config.hint_channels != best.config.hint_channels else []
        if config.unet.in_channels != best.config.unet.in_channels:
            changed.append(f"in_channels={config.unet.in_channels}")
        notes.append(f"the shapes are {what}" + (f" with {', '.join(changed)}" if changed else ""))
    else:
        notes.append(f"no ControlNet we know has exactly these shapes; compared with the closest, {what}")
    if other:
        notes.append(f"the file holds other tensors too: {', '.join(f'{k} ({n})' for k, n in other.items())}")
    return ControlDetectionReport(
        **_base(
            {
                "kind": "controlnet",
                "layout": layout,
                "prefix": prefix,
                "family": best.family,
                "base_preset": best.base_preset,
                "preset": preset_name,
                "exact": exact,
                "config": config.unet.to_dict(),
                "hint_channels": config.hint_channels,
                "missing": missing,
                "unexpected": unexpected,
                "mismatched": mismatched,
                "injections": _injections_of(config),
                "notes": notes,
                "other_keys": other,
                "metadata": metadata,
            },
            own,
        )
    )


# ---- control-LoRA --------------------------------------------------------------------------------------------------
def _control_lora(
    tensors: dict[str, TensorInfo], metadata: dict[str, str], prefix: str | None = None
) -> ControlDetectionReport:
    if prefix is None:
        marker = next(n for n in tensors if n == "lora_controlnet" or n.endswith(".lora_controlnet"))
        prefix = marker[: -len("lora_controlnet")]
    own, other = _split(tensors, prefix, None)
    downs = {k[: -len(".down")]: v for k, v in own.items() if k.endswith(".down")}
    ups = {k[: -len(".up")]: v for k, v in own.items() if k.endswith(".up")}
    pairs = sorted(set(downs) & set(ups))
    ranks = sorted({downs[m].shape[0] for m in pairs if downs[m].shape})
    lora_params = sum(downs[m].numel + ups[m].numel for m in pairs)
    full = [k for k in own if k != "lora_controlnet" and not k.endswith((".up", ".down"))]
    notes: list[str] = []

    # The family: the context width the cross-attention's keys read (a down's input), else the label embedding.
    widths = {downs[m].shape[1] for m in pairs if m.endswith("attn2.to_k") and len(downs[m].shape) >= 2}
    family: Family | None = None
    for width in sorted(widths):
        family = _CONTEXT_FAMILY.get(width)  # type: ignore[assignment]
    if family is None and "label_emb.0.0.weight" in own:
        family = "sdxl"
    if family is None:
        notes.append("no cross-attention or label embedding tensor tells the family")
    control = next((p for p in CONTROLNET_PRESETS.values() if p.family == family), None)
    config = None
    hint = own.get("input_hint_block.0.weight")
    if control is not None:
        config = _fit(control.config, {k: v.shape for k, v in own.items()})
    return ControlDetectionReport(
        **_base(
            {
                "kind": "control_lora",
                "layout": "ldm",
                "prefix": prefix,
                "family": family,
                "base_preset": control.base_preset if control else None,
                "config": config.unet.to_dict() if config else None,
                "hint_channels": hint.shape[1] if hint is not None and len(hint.shape) >= 2 else None,
                "lora": ControlLoraFacts(
                    ranks=ranks, lora_modules=len(pairs), full_tensors=len(full), lora_parameters=lora_params
                ),
                "injections": _injections_of(config) if config else [],
                "notes": notes,
                "other_keys": other,
                "metadata": metadata,
            },
            own,
        )
    )


# ---- T2I-Adapter ---------------------------------------------------------------------------------------------------
# (marker, its companion, layout, light?) of each adapter form; the prefix is what comes before the marker.
_ADAPTER_ANCHORS: tuple[tuple[str, str, Layout, bool], ...] = (
    ("adapter.conv_in.weight", "adapter.body.0.resnets.0.block1.weight", "diffusers", False),
    ("adapter.body.0.in_conv.weight", "adapter.body.0.resnets.0.block1.weight", "diffusers", True),
    ("conv_in.weight", "body.0.block1.weight", "ldm", False),
    ("body.0.in_conv.weight", "body.0.body.0.block1.weight", "ldm", True),
)
# The targets of the four feature maps in the UNet (see the module docstring).
_ADAPTER_TARGETS = {
    "sd1": (("input_blocks.2", 1), ("input_blocks.5", 2), ("input_blocks.8", 4), ("input_blocks.11", 8)),
    "sdxl": (("input_blocks.3", 2), ("input_blocks.5", 2), ("input_blocks.8", 4), ("middle_block", 4)),
}


def _find_adapter(tensors: dict[str, TensorInfo]) -> tuple[str, Layout, bool] | None:
    found: list[tuple[str, Layout, bool]] = []
    for name in tensors:
        for marker, companion, layout, light in _ADAPTER_ANCHORS:
            if name.endswith(marker):
                prefix = name[: -len(marker)]
                if (not prefix or prefix.endswith(".")) and prefix + companion in tensors:
                    found.append((prefix, layout, light))
    if not found:
        return None
    found.sort(key=lambda f: (len(f[0]), f[0]))
    return found[0]


def _parts(key: str) -> list[str]:
    """A name's parts, padded so that a short (hand-made) name reads as empty parts rather than failing."""
    return [*key.split("."), *[""] * 6]


def _blocks_of(own: dict[str, TensorInfo], layout: Layout, light: bool) -> tuple[list[int], int]:
    """(width of each block, residual blocks per block) from the adapter's names and shapes."""
    if layout == "diffusers":
        body = "adapter.body."
        widths: dict[int, int] = {}
        resnets: dict[int, set[int]] = defaultdict(set)
        for key, info in own.items():
            parts = _parts(key)
            if key.startswith(body) and parts[2].isdigit():
                i = int(parts[2])
                if parts[3] == "resnets" and parts[4].isdigit():
                    resnets[i].add(int(parts[4]))
                    if parts[5] == "block1" and key.endswith(".weight") and not light:
                        widths[i] = info.shape[0] if info.shape else 0
                if light and parts[3] == "out_conv" and key.endswith(".weight"):
                    widths[i] = info.shape[0] if info.shape else 0
        count = max((len(v) for v in resnets.values()), default=0)
        return [widths[i] for i in sorted(widths)], count
    if light:  # body.I.in_conv, body.I.body.J.block1, body.I.out_conv
        widths = {}
        inner: dict[int, set[int]] = defaultdict(set)
        for key, info in own.items():
            parts = _parts(key)
            if parts[0] == "body" and parts[1].isdigit():
                i = int(parts[1])
                if parts[2] == "out_conv" and key.endswith(".weight"):
                    widths[i] = info.shape[0] if info.shape else 0
                if parts[2] == "body" and parts[3].isdigit():
                    inner[i].add(int(parts[3]))
        return [widths[i] for i in sorted(widths)], max((len(v) for v in inner.values()), default=0)
    # The full original: one flat list body.K of residual blocks, a new width wherever an in_conv appears.
    flat: dict[int, int] = {}
    for key, info in own.items():
        parts = _parts(key)
        if parts[0] == "body" and parts[1].isdigit() and parts[2] == "block1" and key.endswith(".weight"):
            flat[int(parts[1])] = info.shape[0] if info.shape else 0
    per_width = [flat[k] for k in sorted(flat)]
    if not per_width:
        return [], 0
    # Blocks of equal width that follow one another form one adapter block; but the last two SD blocks are both 1280
    # wide, so the residual count per block is the flat count over four feature maps.
    blocks = 4 if len(per_width) % 4 == 0 else len({*per_width})
    count = len(per_width) // blocks if blocks else 0
    return [per_width[i * count] for i in range(blocks)], count


def _adapter(
    tensors: dict[str, TensorInfo], prefix: str, layout: Layout, light: bool, metadata: dict[str, str]
) -> ControlDetectionReport:
    own, other = _split(tensors, prefix, None if prefix else frozenset({"adapter", "conv_in", "body"}))
    widths, res_blocks = _blocks_of(own, layout, light)
    notes: list[str] = []
    first = "adapter." if layout == "diffusers" else ""
    opening = own.get(f"{first}body.0.in_conv.weight") if light else own.get(f"{first}conv_in.weight")
    unshuffled = opening.shape[1] if opening is not None and len(opening.shape) >= 2 else 0
    # The pixel-unshuffle multiplies the image's channels by factor²: 8 (64x) for SD 1.x, 16 (256x) for SDXL. A
    # width that 256 divides into 1 or 3 channels is the SDXL adapter's (its canny and sketch models take 1).
    if not light and unshuffled % 256 == 0 and unshuffled // 256 in (1, 3):
        factor, family, kind = 16, "sdxl", "full_adapter_xl"
    else:
        factor, family, kind = 8, "sd1", "light_adapter" if light else "full_adapter"
    in_channels = unshuffled // (factor * factor) if unshuffled % (factor * factor) == 0 else 0
    if family == "sd1":
        notes.append("SD 2.x UNets have the same widths at the same places: the shapes cannot tell SD 1.x from 2.x")
    if in_channels == 0:
        notes.append(f"the first conv reads {unshuffled} channels, which no pixel-unshuffle of 8 or 16 makes")
    points = [
        InjectionPoint(index=i, target=target, added_to="encoder", factor=f, image_factor=f * 8, channels=widths[i])
        for i, (target, f) in enumerate(_ADAPTER_TARGETS[family][: len(widths)])
    ]
    if len(widths) != 4:
        notes.append(f"{len(widths)} feature maps where the released adapters have 4")
    if other:
        notes.append(f"the file holds other tensors too: {', '.join(f'{k} ({n})' for k, n in other.items())}")
    return ControlDetectionReport(
        **_base(
            {
                "kind": "t2i_adapter",
                "layout": layout,
                "prefix": prefix,
                "family": family,
                "base_preset": "sd1" if family == "sd1" else "sdxl-base",
                "adapter": AdapterFacts(
                    type=kind,  # type: ignore[arg-type]
                    in_channels=in_channels,
                    unshuffle_factor=factor,
                    channels=widths,
                    num_res_blocks=res_blocks,
                ),
                "injections": points,
                "notes": notes,
                "other_keys": other,
                "metadata": metadata,
            },
            own,
        )
    )
