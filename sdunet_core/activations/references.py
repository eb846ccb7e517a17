"""Where published work reads the UNet's activations, attached to the catalog's points, and the named groups.

Sources (read, not copied):
- the study "Not All Diffusion Model Activations Have Been Evaluated as Discriminative Features"
  (Darkbblue/generic-diffusion-feature, `feature/configs/config_15_practical.json` and
  `config_xl_practical.json`): the four activations it recommends for SD 1.5 and for SDXL;
- DIFT (Tsingularity/dift, README): `up_ft_index` i is the output of diffusers' `up_blocks[i]`, which is the
  scheme's up level i; semantic correspondence uses index 1 at t = 261 on SD 2.1;
- DAAM (castorini/daam, `daam/trace.py`): heat maps from every cross-attention (`attn2`) of the down and up
  stages, the middle block's only on request, averaged over heads, layers and timesteps;
- DeepCache (horseee/DeepCache, `DeepCache/extension/deepcache.py`): `cache_branch_id` b = 3·block + layer over
  diffusers' down blocks, that is the skip leaving `input_blocks[b + 1]`; on cached steps only the blocks above
  that skip run, and the up stage's feature entering the matching output block is reused from the last full step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..model.config import UNetConfig
from ..presets import PRESETS

if TYPE_CHECKING:
    from .catalog import ActivationPoint

STUDY = "Not All Diffusion Model Activations… (generic-diffusion-feature)"
STUDY_PICKS: dict[str, tuple[str, ...]] = {
    "sd1": (
        "up-level1-repeat1-vit-block0-cross-q",
        "up-level1-repeat2-res-out",
        "up-level2-repeat1-vit-block0-cross-q",
        "up-level3-repeat0-vit-block0-self-k",
    ),
    "sdxl-base": (
        "up-level0-repeat0-vit-block5-out",
        "up-level0-repeat0-vit-block7-out",
        "up-level1-repeat0-vit-block0-cross-q",
        "up-level1-repeat0-vit-block0-out",
    ),
}

# The block outputs: what "capture every block output" means (the bench, the page's U).
OUTPUT_KINDS = frozenset(
    {"unet-in", "unet-after-conv-in", "res-out", "vit-out", "downsampler-out", "upsampler-out", "unet-out"}
)


def _recommended(p: ActivationPoint) -> bool:
    return any(text.startswith(STUDY) for text in p.used_by)


# Names a request may use for several points at once.
GROUPS: dict[str, Callable[[ActivationPoint], bool]] = {
    "@outputs": lambda p: p.kind in OUTPUT_KINDS,
    "@cross-maps": lambda p: p.kind == "cross-map",
    "@recommended": _recommended,
    "@all": lambda p: True,
}


def _preset_of(config: UNetConfig) -> str | None:
    return next((name for name, p in PRESETS.items() if p.config == config), None)


def annotate(config: UNetConfig, points: list[ActivationPoint]) -> dict[str, list[str]]:
    """Point name -> sentences saying which published method reads it, and how."""
    notes: dict[str, list[str]] = {}

    def add(name: str, text: str) -> None:
        notes.setdefault(name, []).append(text)

    preset = _preset_of(config)
    for name in STUDY_PICKS.get(preset or "", ()):
        add(name, f"{STUDY}: one of the four activations it recommends for {preset}")

    # DIFT: the output of diffusers' up_blocks[i] is the last block output of up level i.
    if config.use_spatial_transformer:
        last_of_level: dict[int, str] = {}
        for p in points:
            if p.stage == "up" and p.block_output and p.level is not None:
                last_of_level[p.level] = p.name
        for level, name in sorted(last_of_level.items()):
            extra = " (DIFT's choice for semantic correspondence, at t = 261 on SD 2.1)" if level == 1 else ""
            add(name, f"DIFT up_ft_index={level}: the output of diffusers' up_blocks[{level}]{extra}")

    for p in points:
        if p.kind == "cross-map":
            if p.stage == "mid":
                add(p.name, "DAAM: the middle block's cross-attention, left out of its heat maps unless asked for")
            else:
                add(p.name, "DAAM: averaged over heads, layers and timesteps into its word heat maps")

    # DeepCache's branch numbering assumes diffusers' layout: two ResBlocks and a downsampler per level.
    if config.use_spatial_transformer and set(config.num_res_blocks) == {2}:
        outputs = {p.block_path: p.name for p in points if p.block_output}
        n_out = sum(1 for path in outputs if path.startswith("output_blocks."))
        n_in = sum(1 for path in outputs if path.startswith("input_blocks."))
        for b in range(n_in - 1):
            cached = f"output_blocks.{n_out - 2 - b}"
            if cached not in outputs:
                continue
            add(outputs[f"input_blocks.{b + 1}"], f"DeepCache cache_branch_id={b}: the skip recomputed on every step")
            add(outputs[cached], f"DeepCache cache_branch_id={b}: the feature cached and reused between full steps")
    return notes
