"""The UNet's modules as the naming schemes see them: path, class, weight shape, top-level block, diffusers name.

Built once per config from `UNetModel(config)` on the meta device (no memory) and cached, because both the names
table and the LoRA detection look modules up by name many times. Only modules that hold parameters are listed
(a SiLU or an Identity is nobody's target and has no name in diffusers).

`kohya_target` says which network of kohya sd-scripts trains a module (kohya-ss/sd-scripts, `networks/lora.py`,
`LoRANetwork.UNET_TARGET_REPLACE_MODULE` and `UNET_TARGET_REPLACE_MODULE_CONV2D_3X3`): a plain LoRA replaces every
Linear and Conv2d inside a `Transformer2DModel` (our SpatialTransformer); with `conv_dim` (LoCon / "LoRA-C3Lier")
the Linear and Conv2d layers inside `ResnetBlock2D`, `Downsample2D` and `Upsample2D` (our ResBlock, Downsample,
Upsample) are added. Nothing else (conv_in, conv_out, the embeddings, the norms) ever gets one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from ..checkpoint.diffusers_keys import keymap_for
from ..model.config import BlockPlan, UNetConfig
from ..model.plan import top_level_of

KohyaTarget = Literal["lora", "locon"] | None

# Our classes -> the kohya/diffusers class that kohya's target lists name.
_LORA_PARENTS = frozenset({"SpatialTransformer"})
_LOCON_PARENTS = frozenset({"ResBlock", "Downsample", "Upsample"})
_TRAINABLE = frozenset({"Linear", "Conv1d", "Conv2d", "Conv3d"})


@dataclass(frozen=True)
class ModuleInfo:
    path: str  # our (the original's) module path: "input_blocks.4.1.transformer_blocks.0.attn1.to_q"
    block: str  # its top-level block: "input_blocks.4", "middle_block", "time_embed", ...
    cls: str  # class name: "Linear", "Conv2d", "GroupNorm32", "SpatialTransformer", ...
    weight_shape: tuple[int, ...] | None  # its own weight (None for containers)
    diffusers: str | None  # UNet2DConditionModel's name, None where diffusers has no one-to-one module
    kohya_target: KohyaTarget

    @property
    def leaf(self) -> bool:
        return self.weight_shape is not None

    @property
    def kind(self) -> str:
        """linear, conv, norm, embedding or container: what a LoRA on this module patches."""
        if self.cls == "Linear":
            return "linear"
        if self.cls.startswith("Conv"):
            return "conv"
        if "Norm" in self.cls:
            return "norm"
        if self.cls == "Embedding":
            return "embedding"
        return "container"


def top_level_block(path: str) -> str:
    """The top-level block a module path belongs to (the stage lists stand for themselves)."""
    return top_level_of(path) or path


@dataclass(frozen=True)
class UNetNames:
    """What the naming schemes need of one model: its top-level blocks and its modules with parameters."""

    blocks: tuple[BlockPlan, ...]  # UNetModel.block_map: embeddings first, then the plan's blocks
    modules: tuple[ModuleInfo, ...]
    _by_path: dict[str, ModuleInfo] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_path", {m.path: m for m in self.modules})

    def module(self, path: str) -> ModuleInfo | None:
        return self._by_path.get(path)


@lru_cache(maxsize=16)
def unet_names(config: UNetConfig) -> UNetNames:
    """Every module of UNetModel(config) that holds parameters, in the model's order (root and lists left out)."""
    import torch

    from ..model.unet import UNetModel

    with torch.device("meta"):
        model = UNetModel(config)
    keymap = keymap_for(config)
    classes = {path: type(m).__name__ for path, m in model.named_modules()}
    out: list[ModuleInfo] = []
    for path, module in model.named_modules():
        if not path or path in ("input_blocks", "output_blocks") or not any(True for _ in module.parameters()):
            continue
        weight = getattr(module, "weight", None)
        own = weight is not None and any(p is weight for p in module.parameters(recurse=False))
        cls = classes[path]
        out.append(
            ModuleInfo(
                path=path,
                block=top_level_block(path),
                cls=cls,
                weight_shape=tuple(weight.shape) if own else None,
                diffusers=keymap.to_diffusers(path) if keymap else None,
                kohya_target=_kohya_target(path, cls, classes),
            )
        )
    return UNetNames(tuple(model.block_map.values()), tuple(out))


def _kohya_target(path: str, cls: str, classes: dict[str, str]) -> KohyaTarget:
    if cls not in _TRAINABLE:
        return None
    parts = path.split(".")
    ancestors = {classes.get(".".join(parts[:i])) for i in range(1, len(parts))}
    if ancestors & _LORA_PARENTS:
        return "lora"
    if ancestors & _LOCON_PARENTS:
        return "locon"
    return None
