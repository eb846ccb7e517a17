"""A T2I-Adapter's file: find it by its opening tensors, and read its form, widths and injections from the shapes.

TencentARC/T2I-Adapter (`ldm/modules/encoders/adapter.py`, `Adapter/models/adapters.py`) and diffusers'
`T2IAdapter` name three forms: the full adapter (`conv_in`, `body.N.block1/block2`, `body.N.in_conv` where the width
changes; diffusers `adapter.conv_in`, `adapter.body.I.resnets.J.block1`, `adapter.body.I.in_conv`), the light one
(`body.I.in_conv`, `body.I.body.J.block1`, `body.I.out_conv`; diffusers `adapter.body.I.resnets.J`) and the SDXL
one (pixel-unshuffle by 16, one downsampling block). Its four feature maps are added to the UNet's encoder: for
SD 1.x after `input_blocks.2, 5, 8, 11` (image / 8, 16, 32, 64; the original adds them where `(i + 1) % 3 == 0`);
for SDXL after `input_blocks.3, 5, 8` and the middle block (image / 16, 16, 32, 32; diffusers'
`down_intrablock_additional_residuals`).
"""

from __future__ import annotations

from collections import defaultdict

from ..checkpoint.detect import anchored_prefixes, split_tensors
from ..checkpoint.header import TensorInfo
from .report import (
    AdapterFacts,
    ControlDetectionReport,
    InjectionPoint,
    Layout,
    control_report,
    other_tensors_note,
)

# (marker, its companion, (layout, light?)) of each adapter form; the prefix is what comes before the marker.
_ADAPTER_ANCHORS: tuple[tuple[str, str, tuple[Layout, bool]], ...] = (
    ("adapter.conv_in.weight", "adapter.body.0.resnets.0.block1.weight", ("diffusers", False)),
    ("adapter.body.0.in_conv.weight", "adapter.body.0.resnets.0.block1.weight", ("diffusers", True)),
    ("conv_in.weight", "body.0.block1.weight", ("ldm", False)),
    ("body.0.in_conv.weight", "body.0.body.0.block1.weight", ("ldm", True)),
)
# The targets of the four feature maps in the UNet (see the module docstring).
_ADAPTER_TARGETS = {
    "sd1": (("input_blocks.2", 1), ("input_blocks.5", 2), ("input_blocks.8", 4), ("input_blocks.11", 8)),
    "sdxl": (("input_blocks.3", 2), ("input_blocks.5", 2), ("input_blocks.8", 4), ("middle_block", 4)),
}


def find_adapter(tensors: dict[str, TensorInfo]) -> tuple[str, Layout, bool] | None:
    """(prefix, layout, light?) of the T2I-Adapter in a tensor table (the shortest prefix), or None."""
    found = anchored_prefixes(tensors, _ADAPTER_ANCHORS)
    if not found:
        return None
    found.sort(key=lambda f: (len(f[0]), f[0]))
    prefix, (layout, light) = found[0]
    return prefix, layout, light


def _parts(key: str) -> list[str]:
    """A name's parts, padded so that a short (hand-made) name reads as empty parts rather than failing."""
    return [*key.split("."), *[""] * 6]


def _width(info: TensorInfo) -> int:
    return info.shape[0] if info.shape else 0


def _diffusers_blocks(own: dict[str, TensorInfo], light: bool) -> tuple[list[int], int]:
    """adapter.body.I.resnets.J.block1 (full) or adapter.body.I.out_conv (light) give block I's width."""
    widths: dict[int, int] = {}
    resnets: dict[int, set[int]] = defaultdict(set)
    for key, info in own.items():
        parts = _parts(key)
        if key.startswith("adapter.body.") and parts[2].isdigit():
            i = int(parts[2])
            if parts[3] == "resnets" and parts[4].isdigit():
                resnets[i].add(int(parts[4]))
                if parts[5] == "block1" and key.endswith(".weight") and not light:
                    widths[i] = _width(info)
            if light and parts[3] == "out_conv" and key.endswith(".weight"):
                widths[i] = _width(info)
    count = max((len(v) for v in resnets.values()), default=0)
    return [widths[i] for i in sorted(widths)], count


def _light_blocks(own: dict[str, TensorInfo]) -> tuple[list[int], int]:
    """body.I.in_conv, body.I.body.J.block1, body.I.out_conv: block I's width is its out_conv's."""
    widths: dict[int, int] = {}
    inner: dict[int, set[int]] = defaultdict(set)
    for key, info in own.items():
        parts = _parts(key)
        if parts[0] == "body" and parts[1].isdigit():
            i = int(parts[1])
            if parts[2] == "out_conv" and key.endswith(".weight"):
                widths[i] = _width(info)
            if parts[2] == "body" and parts[3].isdigit():
                inner[i].add(int(parts[3]))
    return [widths[i] for i in sorted(widths)], max((len(v) for v in inner.values()), default=0)


def _full_blocks(own: dict[str, TensorInfo]) -> tuple[list[int], int]:
    """The full original: one flat list body.K of residual blocks, a new width wherever an in_conv appears."""
    flat: dict[int, int] = {}
    for key, info in own.items():
        parts = _parts(key)
        if parts[0] == "body" and parts[1].isdigit() and parts[2] == "block1" and key.endswith(".weight"):
            flat[int(parts[1])] = _width(info)
    per_width = [flat[k] for k in sorted(flat)]
    if not per_width:
        return [], 0
    # Blocks of equal width that follow one another form one adapter block; but the last two SD blocks are both 1280
    # wide, so the residual count per block is the flat count over four feature maps.
    blocks = 4 if len(per_width) % 4 == 0 else len({*per_width})
    count = len(per_width) // blocks if blocks else 0
    return [per_width[i * count] for i in range(blocks)], count


def _blocks_of(own: dict[str, TensorInfo], layout: Layout, light: bool) -> tuple[list[int], int]:
    """(width of each block, residual blocks per block) from the adapter's names and shapes."""
    if layout == "diffusers":
        return _diffusers_blocks(own, light)
    return _light_blocks(own) if light else _full_blocks(own)


def detect_adapter(
    tensors: dict[str, TensorInfo], prefix: str, layout: Layout, light: bool, metadata: dict[str, str]
) -> ControlDetectionReport:
    """The report of the T2I-Adapter `find_adapter` found under `prefix`."""
    own, other = split_tensors(tensors, prefix, None if prefix else frozenset({"adapter", "conv_in", "body"}))
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
    facts = AdapterFacts(
        type=kind,  # type: ignore[arg-type]
        in_channels=in_channels,
        unshuffle_factor=factor,
        channels=widths,
        num_res_blocks=res_blocks,
    )
    return control_report(
        "t2i_adapter",
        layout,
        prefix,
        own,
        other,
        metadata,
        family=family,
        base_preset="sd1" if family == "sd1" else "sdxl-base",
        adapter=facts,
        injections=points,
        notes=[*notes, *other_tensors_note(other)],
    )
