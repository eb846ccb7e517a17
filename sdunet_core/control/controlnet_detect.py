"""A ControlNet's file, in either layout: find it by two anchor tensors, and compare it with the ControlNet it fits.

The original layout (lllyasviel/ControlNet `cldm/cldm.py`) has `input_hint_block.0.weight` beside
`zero_convs.0.0.weight`, under `control_model.` (a ControlLDM checkpoint) or no prefix; diffusers' (`ControlNetModel`)
has `controlnet_cond_embedding.conv_in.weight` beside `controlnet_down_blocks.0.weight`. The file's shapes are
compared with `ControlNetModel` of the preset they fit best (hint and latent channels read from the file), as
`detect_unet` compares a UNet: missing, unexpected and mismatched keys in the file's own names. `fit_config` and
`injections_of` serve the control-LoRA detector too.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

from ..checkpoint.detect import anchored_prefixes, compare_shapes, meta_state_shapes, original_names, split_tensors
from ..checkpoint.diffusers_keys import DIFFUSERS_TOP_LEVEL, LDM_TOP_LEVEL
from ..checkpoint.header import TensorInfo
from ..errors import ConfigError
from ..model.plan import plan_blocks
from ..presets import PRESETS
from .controlnet import ControlNetConfig
from .keys import controlnet_keymap, controlnet_keymap_from_diffusers
from .presets import CONTROLNET_PRESETS
from .report import ControlDetectionReport, InjectionPoint, Layout, control_report, other_tensors_note

# Top-level names of a ControlNet without a prefix, per layout (a file may hold other models beside it): the UNet's
# without its way up and output head, and the ControlNet's own parts (hint encoder, zero convs).
_LDM_TOP = (LDM_TOP_LEVEL - {"output_blocks", "out", "id_predictor"}) | {
    "zero_convs",
    "input_hint_block",
    "middle_block_out",
}
_DIFFUSERS_TOP = (DIFFUSERS_TOP_LEVEL - {"up_blocks", "conv_norm_out", "conv_act", "conv_out"}) | {
    "controlnet_cond_embedding",
    "controlnet_down_blocks",
    "controlnet_mid_block",
}
# Two tensors every ControlNet has, per layout.
_ANCHORS: dict[Layout, tuple[str, str]] = {
    "ldm": ("input_hint_block.0.weight", "zero_convs.0.0.weight"),
    "diffusers": ("controlnet_cond_embedding.conv_in.weight", "controlnet_down_blocks.0.weight"),
}
# The usual places first (none, then the ControlLDM's), then the shortest prefix.
_USUAL_PREFIXES = ("", "control_model.", "controlnet.")


def find_controlnet(tensors: dict[str, TensorInfo]) -> tuple[str, Layout] | None:
    """(prefix, layout) of the ControlNet in a tensor table, or None when it holds none."""
    candidates = anchored_prefixes(tensors, [(first, second, layout) for layout, (first, second) in _ANCHORS.items()])
    if not candidates:
        return None
    usual = _USUAL_PREFIXES
    candidates.sort(key=lambda c: (usual.index(c[0]) if c[0] in usual else len(usual), len(c[0]), c[0]))
    return candidates[0]


@lru_cache(maxsize=32)
def _control_shapes(config: ControlNetConfig) -> dict[str, tuple[int, ...]]:
    from .controlnet import ControlNetModel

    return meta_state_shapes(lambda: ControlNetModel(config))


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


def fit_config(config: ControlNetConfig, shapes: dict[str, tuple[int, ...]]) -> ControlNetConfig:
    """The ControlNet with the hint and latent channels the file has (inpainting and 1-channel hints)."""
    hint = shapes.get("input_hint_block.0.weight")
    latent = shapes.get("input_blocks.0.0.weight")
    unet = config.unet
    if latent is not None and len(latent) >= 2 and latent[1] != unet.in_channels:
        unet = dataclasses.replace(unet, in_channels=latent[1], out_channels=unet.out_channels)
    hint_channels = hint[1] if hint is not None and len(hint) >= 2 else config.hint_channels
    return dataclasses.replace(config, unet=unet, hint_channels=hint_channels)


def injections_of(config: ControlNetConfig) -> list[InjectionPoint]:
    """Where a ControlNet's outputs land: the skip of every input block, then the middle block's output."""
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


def _best_candidate(shapes: dict[str, tuple[int, ...]]) -> _Candidate:
    """The ControlNet the file fits best, among the presets and a ControlNet on every other UNet preset (the
    variants too): most tensors of equal name and shape, fewest differences."""

    def score(candidate: _Candidate) -> tuple[int, int]:
        expected = _control_shapes(fit_config(candidate.config, shapes))
        same = sum(1 for k, s in shapes.items() if expected.get(k) == s)
        return same, -len(set(expected) ^ set(shapes))

    return max(_candidates(shapes), key=score)


def _fit_note(best: _Candidate, config: ControlNetConfig, exact: bool) -> tuple[str | None, str]:
    """(the preset's name when the file is exactly that preset, the note that says how it compares)."""
    what = f"preset {best.name}'s" if best.name else f"those of a ControlNet on {best.base_preset}"
    if exact and config == best.config and best.name:
        return best.name, f"the shapes equal {what}"
    if exact:
        changed = [f"hint_channels={config.hint_channels}"] if config.hint_channels != best.config.hint_channels else []
        if config.unet.in_channels != best.config.unet.in_channels:
            changed.append(f"in_channels={config.unet.in_channels}")
        return None, f"the shapes are {what}" + (f" with {', '.join(changed)}" if changed else "")
    return None, f"no ControlNet we know has exactly these shapes; compared with the closest, {what}"


def detect_controlnet(
    tensors: dict[str, TensorInfo], prefix: str, layout: Layout, metadata: dict[str, str]
) -> ControlDetectionReport:
    """The report of the ControlNet `find_controlnet` found under `prefix` in `layout`."""
    own, other = split_tensors(tensors, prefix, _LDM_TOP if layout == "ldm" else _DIFFUSERS_TOP)
    file_map = controlnet_keymap_from_diffusers(own) if layout == "diffusers" else None
    by_original, untranslated = original_names(own, file_map)
    shapes = {name: info.shape for name, info in by_original.items()}

    best = _best_candidate(shapes)
    config = fit_config(best.config, shapes)
    expected = _control_shapes(config)
    # Reported in the names diffusers gives this config's ControlNet.
    own_map = controlnet_keymap(config) if layout == "diffusers" else None
    missing, unexpected, mismatched = compare_shapes(expected, shapes, untranslated, own_map)
    exact = not (missing or unexpected or mismatched)
    preset_name, note = _fit_note(best, config, exact)
    return control_report(
        "controlnet",
        layout,
        prefix,
        own,
        other,
        metadata,
        family=best.family,
        base_preset=best.base_preset,
        preset=preset_name,
        exact=exact,
        config=config.unet.to_dict(),
        hint_channels=config.hint_channels,
        missing=missing,
        unexpected=unexpected,
        mismatched=mismatched,
        injections=injections_of(config),
        notes=[note, *other_tensors_note(other)],
    )
