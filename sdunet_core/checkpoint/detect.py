"""Open your own checkpoint: find the UNet in a tensor table and name its architecture from the shapes alone.

`detect_unet(header)` takes a safetensors header (or the table `read_header` builds from a file) and

1. finds the prefix the UNet sits under (`model.diffusion_model.` in the original single-file checkpoints,
   none in a diffusers `unet/` file, anything else such as `unet.`) and its key format: `"ldm"` (the original
   names) or `"diffusers"` (UNet2DConditionModel names, renamed to the original ones through `diffusers_keys`);
2. reconstructs the whole `UNetConfig` from the shapes (`infer_config`, which lists what shapes cannot show);
3. names the preset whose state dict has exactly these shapes and takes that preset's config (sd2 and sd2-v
   are the same network: `preset` is the first, `matching_presets` lists both);
4. compares the file with `UNetModel(config)` built on the meta device: missing, unexpected and mismatched
   keys, in the file's own naming;
5. adds up the bytes of every top-level block by dtype.

The steps that do not depend on the model being a UNet (`anchored_prefixes`, `split_tensors`, `original_names`,
`compare_shapes`, `clip_metadata`, `meta_state_shapes`) serve the control-model detectors (`control_detect`) too.

Nothing here reads tensor data, and nothing imports the web app.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..model.config import UNetConfig
from ..model.plan import top_level_of
from ..presets import PRESETS
from ..schema import UNetConfigModel
from .diffusers_keys import DIFFUSERS_TOP_LEVEL, LDM_TOP_LEVEL, KeyMap, keymap_for, layout_from_diffusers_keys
from .header import (
    CheckpointError,
    TensorInfo,
    parse_safetensors_header,
    read_header,
    read_safetensors_header,
    read_torch_checkpoint,
    validate_header,
)
from .infer_config import infer_config

__all__ = [
    "CheckpointError",
    "Detection",
    "TensorInfo",
    "detect_unet",
    "inspect_file",
    "parse_safetensors_header",
    "read_header",
    "read_safetensors_header",
    "read_torch_checkpoint",
]

KeyFormat = Literal["ldm", "diffusers"]
Tag = TypeVar("Tag")

# Two tensors that every UNet has, per key format: the time embedding's first Linear and the input conv.
_ANCHORS: dict[KeyFormat, tuple[str, str]] = {
    "ldm": ("time_embed.0.weight", "input_blocks.0.0.weight"),
    "diffusers": ("time_embedding.linear_1.weight", "conv_in.weight"),
}
# Where the UNet usually sits: preferred when a file holds more than one candidate.
_USUAL_PREFIXES = ("model.diffusion_model.", "", "unet.")

# What the other parts of a Stable Diffusion file are, to say what a file without a UNet holds.
_KNOWN_PARTS = {
    "first_stage_model": "the VAE",
    "cond_stage_model": "the text encoder",
    "conditioner": "the text encoders (SDXL)",
    "text_model": "a CLIP text encoder",
    "encoder": "a VAE encoder",
    "decoder": "a VAE decoder",
    "model_ema": "EMA weights",
}

# Metadata is echoed back cut to this many entries of this length (a training log can be megabytes).
_METADATA_CHARS = 200
_METADATA_ENTRIES = 64


@dataclass
class Detection:
    """What a tensor table holds: where the UNet is, its architecture, and how well the file fits it."""

    prefix: str
    format: KeyFormat
    config: UNetConfig
    preset: str | None
    matching_presets: list[str]
    missing: list[str]
    unexpected: list[str]
    mismatched: list[dict[str, Any]]
    bytes_by_block: dict[str, dict[str, int]]
    num_parameters: int
    notes: list[str] = field(default_factory=list)
    other_keys: dict[str, int] = field(default_factory=dict)
    other_prefixes: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        """The file loads into UNetModel(config) with strict=True once the prefix is dropped."""
        return not (self.missing or self.unexpected or self.mismatched)

    def to_dict(self) -> dict[str, Any]:
        return self.report().model_dump(mode="json")

    def report(self) -> DetectionReport:
        dtypes: dict[str, int] = defaultdict(int)
        for per_dtype in self.bytes_by_block.values():
            for dtype, n in per_dtype.items():
                dtypes[dtype] += n
        return DetectionReport(
            **{
                "prefix": self.prefix,
                "format": self.format,
                "preset": self.preset,
                "matching_presets": self.matching_presets,
                "exact": self.exact,
                "config": self.config.to_dict(),
                "ldm_params": self.config.to_ldm_or_none(),
                "num_parameters": self.num_parameters,
                "missing": self.missing,
                "unexpected": self.unexpected,
                "mismatched": self.mismatched,
                "bytes_by_block": self.bytes_by_block,
                "bytes_by_dtype": dict(dtypes),
                "total_bytes": sum(dtypes.values()),
                "notes": self.notes,
                "other_keys": self.other_keys,
                "other_prefixes": self.other_prefixes,
                "metadata": self.metadata,
            }
        )


class Mismatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="the tensor, in the file's own naming")
    expected: list[int] = Field(description="its shape in UNetModel(config)")
    found: list[int] = Field(description="its shape in the file")


class DetectionReport(BaseModel):
    """What /api/checkpoint/detect and `sdunet-explorer inspect --json` say of a file."""

    model_config = ConfigDict(extra="forbid")

    prefix: str = Field(description="what the UNet's tensor names start with (`model.diffusion_model.`, ``, ...)")
    format: KeyFormat = Field(description="`ldm` (the original names) or `diffusers` (UNet2DConditionModel's)")
    preset: str | None = Field(description="the first preset whose state dict has exactly these shapes")
    matching_presets: list[str] = Field(description="every such preset (sd2 and sd2-v share one network)")
    exact: bool = Field(description="loads into UNetModel(config) with strict=True once the prefix is dropped")
    config: UNetConfigModel = Field(description="the architecture, in our field names")  # type: ignore[valid-type]
    ldm_params: dict[str, Any] | None = Field(
        description="the same as the original constructor's keywords; null where the original cannot build it"
    )
    num_parameters: int = Field(description="parameters of the UNet's tensors in the file")
    missing: list[str] = Field(description="tensors UNetModel(config) has and the file lacks")
    unexpected: list[str] = Field(description="UNet tensors of the file that UNetModel(config) does not have")
    mismatched: list[Mismatch] = Field(description="tensors of both whose shapes differ")
    bytes_by_block: dict[str, dict[str, int]] = Field(description="top-level block -> dtype -> bytes in the file")
    bytes_by_dtype: dict[str, int] = Field(description="dtype -> bytes of the UNet's tensors")
    total_bytes: int = Field(description="bytes of the UNet's tensors")
    notes: list[str] = Field(description="every choice the shapes could not make, and how it was made")
    other_keys: dict[str, int] = Field(description="tensors beside the UNet, counted by their first name part")
    other_prefixes: list[str] = Field(description="other prefixes that also hold a UNet")
    metadata: dict[str, str] = Field(description="the header's __metadata__, cut to 64 entries of 200 characters")


def inspect_file(path: str | Path) -> Detection:
    """Detect the UNet in a `.safetensors`, `.ckpt` or `.pt` file, reading only its header or pickle."""
    return detect_unet(read_header(path))


def detect_unet(header: dict[str, Any], check: Callable[[UNetConfig], None] | None = None) -> Detection:
    """Find the UNet in a safetensors-style header and reconstruct its architecture from the shapes.

    `check` sees the reconstructed config before any model is built from it (a server bounds the work there).
    """
    tensors, metadata = validate_header(header)
    prefix, key_format, others = _find_unet(tensors)
    # Without a prefix only the UNet's own top-level names count: a file may hold the VAE and text encoder beside it.
    unet, other_keys = split_tensors(tensors, prefix, LDM_TOP_LEVEL if key_format == "ldm" else DIFFUSERS_TOP_LEVEL)
    keymap = KeyMap(layout_from_diffusers_keys(unet)) if key_format == "diffusers" else None
    ldm, untranslated = original_names(unet, keymap)
    shapes = {k: v.shape for k, v in ldm.items()}

    # The architecture from the shapes, then the presets with exactly these shapes.
    config, notes = infer_config(shapes)
    if check is not None:
        check(config)
    matching = [name for name, p in PRESETS.items() if _could_match(p.config, config) and _shapes(p.config) == shapes]
    if matching:
        config, notes = _preset_settings(matching[0], config)

    # The file against UNetModel(config), reported in the file's own names.
    expected = _shapes(config)
    missing, unexpected, mismatched = compare_shapes(expected, shapes, untranslated, keymap)
    if key_format == "diffusers" and (reason := _diffusers_gap(config)):
        notes.append(reason)

    return Detection(
        prefix=prefix,
        format=key_format,
        config=config,
        preset=matching[0] if matching else None,
        matching_presets=matching,
        missing=missing,
        unexpected=unexpected,
        mismatched=mismatched,
        # Untranslatable diffusers tensors count too, under their own first name part.
        bytes_by_block=_bytes_by_block({**ldm, **{n: unet[n] for n in untranslated}}, expected),
        num_parameters=sum(info.numel for info in unet.values()),
        notes=notes,
        other_keys=other_keys,
        other_prefixes=others,
        metadata=clip_metadata(metadata),
    )


# ---- helpers the control-model detectors (`control_detect`) share -------------------------------------------------
def split_tensors(
    tensors: dict[str, TensorInfo], prefix: str, top_level: frozenset[str] | None
) -> tuple[dict[str, TensorInfo], dict[str, int]]:
    """(the model's tensors without the prefix, the other tensors counted by their first name part, sorted).

    Without a prefix only names whose first part is in `top_level` are the model's (all of them when it is None).
    """
    own: dict[str, TensorInfo] = {}
    other: dict[str, int] = defaultdict(int)
    for name, info in tensors.items():
        local = name[len(prefix) :] if name.startswith(prefix) else None
        if local is None or (not prefix and top_level is not None and local.split(".", 1)[0] not in top_level):
            other[name.split(".", 1)[0]] += 1
        else:
            own[local] = info
    return own, dict(sorted(other.items()))


def original_names(tensors: dict[str, TensorInfo], keymap: KeyMap | None) -> tuple[dict[str, TensorInfo], list[str]]:
    """(tensors by original name, diffusers names that do not translate); without a key map the names stay."""
    if keymap is None:
        return tensors, []
    ldm: dict[str, TensorInfo] = {}
    untranslated: list[str] = []
    for name, info in tensors.items():
        original = keymap.from_diffusers(name)
        if original is None:
            untranslated.append(name)
        else:
            ldm[original] = info
    return ldm, untranslated


def compare_shapes(
    expected: dict[str, tuple[int, ...]],
    shapes: dict[str, tuple[int, ...]],
    untranslated: list[str],
    keymap: KeyMap | None,
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """(missing, unexpected, mismatched) of a file's shapes against a model's, both by original name; reported in
    the file's own names (diffusers' through `keymap`, where it has one)."""

    def own(original: str) -> str:
        return (keymap.to_diffusers(original) if keymap is not None else None) or original

    missing = [own(k) for k in expected if k not in shapes]
    unexpected = sorted([*untranslated, *(own(k) for k in shapes if k not in expected)])
    mismatched = [
        {"key": own(k), "expected": list(expected[k]), "found": list(shapes[k])}
        for k in expected
        if k in shapes and shapes[k] != expected[k]
    ]
    return missing, unexpected, mismatched


def anchored_prefixes(names: Collection[str], anchors: Iterable[tuple[str, str, Tag]]) -> list[tuple[str, Tag]]:
    """(prefix, tag) for each anchor (first, second, tag) whose two tensors a file holds under one prefix: a name
    is `prefix + first` and `prefix + second` is a name too; the prefix is empty or ends in a dot. In the order of
    the names, then of the anchors."""
    anchors = list(anchors)
    found: list[tuple[str, Tag]] = []
    for name in names:
        for first, second, tag in anchors:
            if name.endswith(first):
                prefix = name[: -len(first)]
                if (not prefix or prefix.endswith(".")) and prefix + second in names:
                    found.append((prefix, tag))
    return found


def clip_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """The header's metadata as it is echoed back: its first entries, keys and values cut short."""
    return {k[:_METADATA_CHARS]: v[:_METADATA_CHARS] for k, v in list(metadata.items())[:_METADATA_ENTRIES]}


def meta_state_shapes(build: Callable[[], Any]) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the state dict of the model `build()` makes, built on the meta device (no memory)."""
    import torch

    with torch.device("meta"):
        model = build()
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# ---- the UNet --------------------------------------------------------------------------------------------------------
def _preset_settings(name: str, inferred: UNetConfig) -> tuple[UNetConfig, list[str]]:
    """The preset's config, which fills in what shapes cannot show (heads, depths where there is no attention...)."""
    preset_config = PRESETS[name].config
    changed = [
        f"{f}={getattr(preset_config, f)!r}"
        for f in inferred.to_dict()
        if getattr(preset_config, f) != getattr(inferred, f)
    ]
    note = f"the shapes equal preset {name}'s" + (
        f"; took its settings for what shapes cannot show: {', '.join(changed)}" if changed else ""
    )
    return preset_config, [note]


def _find_unet(tensors: dict[str, TensorInfo]) -> tuple[str, KeyFormat, list[str]]:
    """(prefix, key format, other candidate prefixes) of the UNet; CheckpointError when there is none."""
    names = set(tensors)
    candidates = anchored_prefixes(names, [(first, second, fmt) for fmt, (first, second) in _ANCHORS.items()])
    if not candidates:
        raise CheckpointError("header", _no_unet_message(names))

    def rank(candidate: tuple[str, KeyFormat]) -> tuple[int, int, str, bool]:
        prefix, key_format = candidate
        usual = _USUAL_PREFIXES.index(prefix) if prefix in _USUAL_PREFIXES else len(_USUAL_PREFIXES)
        return usual, len(prefix), prefix, key_format != "ldm"

    candidates.sort(key=rank)
    prefix, key_format = candidates[0]
    return prefix, key_format, list(dict.fromkeys(p for p, _ in candidates[1:] if p != prefix))


def _no_unet_message(names: set[str]) -> str:
    parts: dict[str, int] = defaultdict(int)
    for name in names:
        parts[name.split(".", 1)[0]] += 1
    held = ", ".join(
        f"{part} ({n} tensors{', ' + _KNOWN_PARTS[part] if part in _KNOWN_PARTS else ''})"
        for part, n in sorted(parts.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
    )
    return (
        "no UNet found: no time_embed.0.weight beside input_blocks.0.0.weight (original names) or "
        "time_embedding.linear_1.weight beside conv_in.weight (diffusers names) under any prefix; "
        + (f"the file holds {held}" if held else "the file holds no tensors")
    )


def _diffusers_gap(config: UNetConfig) -> str | None:
    if keymap_for(config) is None:
        return "diffusers' UNet2DConditionModel cannot express this architecture; names were read as far as they map"
    return None


def _could_match(a: UNetConfig, b: UNetConfig) -> bool:
    """A cheap pre-check before comparing whole state dicts: the fields every shape depends on."""
    return (a.in_channels, a.out_channels, a.model_channels, a.channel_mult, a.num_res_blocks) == (
        b.in_channels,
        b.out_channels,
        b.model_channels,
        b.channel_mult,
        b.num_res_blocks,
    )


@lru_cache(maxsize=64)
def _shapes(config: UNetConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of UNetModel(config), built on the meta device (no memory, a few milliseconds)."""
    from ..model.unet import UNetModel

    return meta_state_shapes(lambda: UNetModel(config))


def _block_of(key: str) -> str:
    return top_level_of(key) or key


def _bytes_by_block(tensors: dict[str, TensorInfo], expected: dict[str, tuple[int, ...]]) -> dict[str, dict[str, int]]:
    """Block -> dtype -> bytes, blocks in the model's order (then any the model does not have)."""
    order = {block: i for i, block in enumerate(dict.fromkeys(_block_of(k) for k in expected))}
    out: dict[str, dict[str, int]] = {}
    for key, info in sorted(tensors.items(), key=lambda kv: order.get(_block_of(kv[0]), math.inf)):
        per_dtype = out.setdefault(_block_of(key), {})
        per_dtype[info.dtype] = per_dtype.get(info.dtype, 0) + info.nbytes
    return out
