"""UNet configuration: readable field names, the original yaml form, and the derived facts every part reads.

`UNetConfig` says plainly what the original `UNetModel.__init__` arguments say with `-1` sentinels and
flags that rewrite each other (CompVis latent-diffusion / stable-diffusion, Stability-AI stablediffusion for
SD 2.x and generative-models `sgm` for SDXL). `from_ldm()` reads a yaml's `unet_config.params` verbatim;
`to_ldm()` writes back exactly the original constructor's keywords. Every impossible combination is a
`ConfigError` naming the field and the value, raised by `validate.py` before torch runs; `plan.py` walks the U.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError, quote
from .plan import AttentionPlan, BlockPlan, plan_blocks
from .validate import as_tuple, check_levels, per_level, per_slot, validate

__all__ = ["AttentionPlan", "BlockPlan", "ConfigError", "UNetConfig", "plan_blocks"]

ClassConditioning = int | Literal["continuous", "sequential"] | None

# yaml keys that the original constructors accept but that do not change the architecture or the numbers
# of a forward pass in eval mode (checkpointing, dtype flags, attention kernels, the sample size hint).
IGNORED_LDM_KEYS = frozenset(
    {
        "use_checkpoint",
        "use_fp16",
        "use_bf16",
        "legacy",
        "image_size",
        "spatial_transformer_attn_type",
        "offload_to_cpu",
    }
)
# Our fields that the original constructor does not have, never written by to_ldm. norm_groups is read by from_ldm
# (our tiny models' yaml); the original always normalises with 32 groups. The others describe relatives of the
# released UNets (distilled and pruned variants, models known only by a diffusers config) that the original
# constructor cannot build: from_ldm does not take them, and to_ldm() refuses a config that sets them to anything
# but their default (see `ldm_unsupported`).
OUR_EXTENSIONS = frozenset({"norm_groups", "middle_block", "transformer_depth_down", "transformer_depth_up"})
MiddleBlock = Literal["attention", "resblock"] | None


@dataclass(frozen=True)
class UNetConfig:
    """Every architectural option of the original UNetModel, under readable names.

    Per-level options accept an int (the same at every level) and are stored as one tuple entry per level.
    """

    # Channels of the latent the model reads (4 for SD; 9 for inpainting: latent, mask and masked image).
    in_channels: int
    # Channels it predicts (the noise, or v, in the latent's channels).
    out_channels: int
    # Width of the first level; the time embedding is 4x as wide.
    model_channels: int
    # Width of level i is model_channels * channel_mult[i]; the number of levels is len(channel_mult).
    channel_mult: tuple[int, ...]
    # ResBlocks per level on the way down (the way up has one more per level).
    num_res_blocks: tuple[int, ...]
    # Downsample factors (1, 2, 4, ...) at which blocks get attention, as in the original yaml.
    attention_resolutions: tuple[int, ...]
    # Dropout probability inside the ResBlocks and transformers (inactive in eval mode).
    dropout: float = 0.0
    # Learned 3x3 convolutions for down/upsampling; False means average pooling / plain nearest upsampling.
    conv_resample: bool = True
    # 2 for images; 1 and 3 build the same U with Conv1d / Conv3d (3D resamples height and width only).
    dims: int = 2
    # None, a number of classes (an Embedding), "continuous" (Linear 1 -> emb) or "sequential" (an MLP of
    # adm_in_channels, SDXL's pooled text + size conditioning).
    num_classes: ClassConditioning = None
    # Width of y for num_classes="sequential" (SDXL base: 2816, pooled text 1280 + six size embeddings of 256).
    adm_in_channels: int | None = None
    # Exactly one of num_heads and num_head_channels: a fixed head count at every width, ...
    num_heads: int | None = None
    # ... or a fixed width per head (heads = width // num_head_channels; SD 2.x and SDXL: 64).
    num_head_channels: int | None = None
    # Heads for plain attention blocks on the way up (only with num_heads; defaults to num_heads).
    num_heads_upsample: int | None = None
    # FiLM-like conditioning: the time embedding gives a scale and a shift instead of a bias.
    use_scale_shift_norm: bool = False
    # Down/upsample with a ResBlock that resamples inside instead of a plain Downsample/Upsample.
    resblock_updown: bool = False
    # Plain attention blocks only: split q, k, v before the heads instead of after.
    use_new_attention_order: bool = False
    # SpatialTransformer (cross-attention to a context) instead of plain self-attention blocks.
    use_spatial_transformer: bool = False
    # BasicTransformerBlocks per SpatialTransformer, per level; the middle block's depth apart.
    transformer_depth: tuple[int, ...] = (1,)
    # The middle block's depth; the deepest level's by default.
    transformer_depth_middle: int | None = None
    # Width of the context tokens; a tuple gives one per transformer block within a SpatialTransformer.
    context_dim: int | tuple[int, ...] | None = None
    # Linear instead of 1x1 conv projections in and out of the transformer (SD 2.x, SDXL).
    use_linear_in_transformer: bool = False
    # Per level: the first attention of each transformer block attends to the context too (x4 upscaler).
    disable_self_attentions: tuple[bool, ...] | None = None
    # Per level: how many of the level's res blocks get attention (the first n); None means all of them.
    num_attention_blocks: tuple[int, ...] | None = None
    # The middle block's transformer blocks attend to the context in attn1 too.
    disable_middle_self_attn: bool = False
    # A codebook head (id_predictor) for VQ models: the forward returns logits over n_embed codes.
    n_embed: int | None = None
    # Groups of every GroupNorm: 32 in every released model; smaller lets teaching and test models be tiny.
    norm_groups: int = 32
    # The middle block: "attention" (ResBlock, attention, ResBlock, as in every released model), "resblock" (one
    # ResBlock: SSD-1B, Segmind Vega; diffusers' UNetMidBlock2D) or null (none at all: BK-SDM Small and Tiny;
    # diffusers' mid_block_type null). Only "attention" exists in the original code.
    middle_block: MiddleBlock = "attention"
    # Transformer depth of each down res block, per level (a list of num_res_blocks[level] depths, or one depth
    # for the whole level), where it differs from transformer_depth (SSD-1B; diffusers' nested
    # transformer_layers_per_block). null: transformer_depth[level] everywhere. Not in the original code.
    transformer_depth_down: tuple[tuple[int, ...], ...] | None = None
    # The same for each up block, per level from level 0 (num_res_blocks[level] + 1 depths, in the level's
    # output-block order); diffusers' reverse_transformer_layers_per_block lists it from the lowest level.
    # null: transformer_depth[level]. Not in the original code.
    transformer_depth_up: tuple[tuple[int, ...], ...] | None = None
    _levels: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        levels = check_levels(self.channel_mult)
        n = len(levels)
        object.__setattr__(self, "channel_mult", levels)
        object.__setattr__(self, "_levels", n)
        object.__setattr__(self, "num_res_blocks", per_level("num_res_blocks", self.num_res_blocks, n, int))
        object.__setattr__(self, "transformer_depth", per_level("transformer_depth", self.transformer_depth, n, int))
        object.__setattr__(
            self,
            "attention_resolutions",
            tuple(sorted(set(as_tuple("attention_resolutions", self.attention_resolutions, int)))),
        )
        if self.disable_self_attentions is not None:
            object.__setattr__(
                self,
                "disable_self_attentions",
                per_level("disable_self_attentions", self.disable_self_attentions, n, bool),
            )
        if self.num_attention_blocks is not None:
            object.__setattr__(
                self, "num_attention_blocks", per_level("num_attention_blocks", self.num_attention_blocks, n, int)
            )
        if isinstance(self.context_dim, (list, tuple)):
            object.__setattr__(self, "context_dim", as_tuple("context_dim", self.context_dim, int))
        for name, extra in (("transformer_depth_down", 0), ("transformer_depth_up", 1)):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, per_slot(name, value, self.num_res_blocks, extra))
        if self.transformer_depth_middle is None and self.use_spatial_transformer and self.middle_block == "attention":
            # The original takes the deepest level's depth for the middle block (SDXL: 10).
            object.__setattr__(self, "transformer_depth_middle", self.transformer_depth[-1])
        validate(self)

    # ---- derived facts -------------------------------------------------------------------------------
    @property
    def num_levels(self) -> int:
        return len(self.channel_mult)

    @property
    def time_embed_dim(self) -> int:
        return self.model_channels * 4

    @property
    def downsample_factor(self) -> int:
        """How much the lowest level is smaller than the input: 2 ** (levels - 1)."""
        return 2 ** (self.num_levels - 1)

    @property
    def context_width(self) -> int | None:
        """Width of the context tokens fed to the model (the first block's, when they differ)."""
        if self.context_dim is None:
            return None
        return self.context_dim[0] if isinstance(self.context_dim, tuple) else self.context_dim

    def transformer_depth_at(self, level: int, position: int, up: bool) -> int:
        """The depth of the spatial transformer of the res block at (level, position), down or up."""
        per_slot = self.transformer_depth_up if up else self.transformer_depth_down
        if per_slot is not None:
            return per_slot[level][position]
        return self.transformer_depth[level]

    def heads_for(self, channels: int, upsample: bool = False) -> tuple[int, int]:
        """(heads, channels per head) of an attention at `channels` width, as the original computes them."""
        if self.num_head_channels is not None:
            return channels // self.num_head_channels, self.num_head_channels
        heads = self.num_heads_upsample if (upsample and not self.use_spatial_transformer) else self.num_heads
        heads = heads or self.num_heads or 1
        return heads, channels // heads

    def context_dims_for(self, depth: int) -> list[int | None]:
        """The context width of each of `depth` transformer blocks (sgm's per-block list semantics)."""
        if self.context_dim is None:
            return [None] * depth
        if isinstance(self.context_dim, tuple):
            if len(self.context_dim) == depth:
                return list(self.context_dim)
            return [self.context_dim[0]] * depth
        return [self.context_dim] * depth

    def check_sample_size(self, size: tuple[int, ...]) -> None:
        """Raise ConfigError unless every spatial size survives the downsampling and comes back equal."""
        if len(size) != self.dims:
            raise ConfigError("sample_size", f"needs {self.dims} sizes for dims={self.dims}, got {list(size)}")
        f = self.downsample_factor
        spatial = size[1:] if self.dims == 3 else size  # 3D models resample height and width only
        for s in size:
            if not isinstance(s, int) or isinstance(s, bool) or s < 1:
                raise ConfigError("sample_size", f"sizes must be positive integers, got {list(size)}")
        for s in spatial:
            if s % f:
                raise ConfigError(
                    "sample_size",
                    f"{s} is not divisible by {f} (2 ** (levels - 1) for {self.num_levels} levels); "
                    f"the skips would not line up",
                )

    # ---- the original yaml form ----------------------------------------------------------------------
    @classmethod
    def from_ldm(cls, params: dict[str, Any]) -> UNetConfig:
        """Build from a yaml's `unet_config.params`, taken verbatim."""
        if not isinstance(params, dict):
            raise ConfigError("ldm_params", f"must be a mapping, got {type(params).__name__}")
        unknown = sorted(map(str, set(params) - set(_LDM_TO_FIELD) - IGNORED_LDM_KEYS))
        if unknown:
            raise ConfigError(quote(unknown[0])[1:-1], f"unknown key in the original UNet parameters: {quote(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in params.items():
            if key in IGNORED_LDM_KEYS:
                continue
            name = _LDM_TO_FIELD[key]
            if key in ("num_heads", "num_head_channels", "num_heads_upsample") and value == -1:
                continue  # the original's "not set"
            if isinstance(value, list):
                value = tuple(value)
            kwargs[name] = value
        for required in ("in_channels", "out_channels", "model_channels", "num_res_blocks", "attention_resolutions"):
            if required not in kwargs:
                raise ConfigError(required, "is required")
        kwargs.setdefault("channel_mult", (1, 2, 4, 8))  # the original's default
        if "use_spatial_transformer" not in kwargs:
            # sgm's UNetModel (SDXL) always uses SpatialTransformers and has no such flag; ldm's asserts that a
            # context_dim comes with use_spatial_transformer. So a context_dim alone means the sgm code.
            kwargs["use_spatial_transformer"] = kwargs.get("context_dim") is not None
        if params.get("legacy", True) is False and not kwargs["use_spatial_transformer"]:
            # With legacy=False the original hands each plain attention block a head width (width // num_heads),
            # which overrides num_heads_upsample: the way up has num_heads heads as well.
            kwargs.pop("num_heads_upsample", None)
        return cls(**kwargs)

    def ldm_unsupported(self) -> ConfigError | None:
        """Why the original constructor cannot build this architecture (the field and the reason), or None."""
        if self.middle_block != "attention":
            what = "a single ResBlock" if self.middle_block == "resblock" else "no middle block"
            return ConfigError(
                "middle_block",
                f"{what} ({quote(self.middle_block)}): the original UNetModel always builds ResBlock, attention, "
                f"ResBlock in the middle",
            )
        for name in ("transformer_depth_down", "transformer_depth_up"):
            if getattr(self, name) is not None:
                return ConfigError(
                    name,
                    "transformer depths that differ inside a level or between the down and up stages: the original "
                    "UNetModel takes one depth per level",
                )
        return None

    def to_ldm_or_none(self) -> dict[str, Any] | None:
        """`to_ldm()`, or None where the original cannot express this architecture."""
        return None if self.ldm_unsupported() else self.to_ldm()

    def to_ldm(self) -> dict[str, Any]:
        """The original constructor's keyword arguments for this architecture (our extensions such as norm_groups
        left out: see `OUR_EXTENSIONS`). A ConfigError naming the field where the original cannot express it."""
        if (error := self.ldm_unsupported()) is not None:
            raise error
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if not f.init or f.name in OUR_EXTENSIONS:
                continue
            value = getattr(self, f.name)
            key = _FIELD_TO_LDM[f.name]
            if value is None:
                continue
            if f.name in ("num_res_blocks", "transformer_depth") and len(set(value)) == 1:
                value = value[0]
            if isinstance(value, tuple):
                value = list(value)
            out[key] = value
        if not self.use_spatial_transformer:
            for key in ("transformer_depth", "transformer_depth_middle", "use_linear_in_transformer"):
                out.pop(key, None)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Our field names, JSON-ready."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.init}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNetConfig:
        """Our field names; unknown keys are a ConfigError."""
        if not isinstance(data, dict):
            raise ConfigError("config", f"must be a mapping, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(map(str, set(data) - names))
        if unknown:
            raise ConfigError(
                quote(unknown[0])[1:-1], f"unknown config field(s) {quote(unknown)}; known: {sorted(names)}"
            )
        for required in (
            "in_channels",
            "out_channels",
            "model_channels",
            "channel_mult",
            "num_res_blocks",
            "attention_resolutions",
        ):
            if required not in data:
                raise ConfigError(required, "is required")
        try:
            return cls(**data)
        except TypeError as exc:  # a wrong type slipping through dataclass construction
            raise ConfigError("config", str(exc)) from None


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, tuple) else value


# Our field name -> the original keyword. Only the names that differ are renamed; the original ones read well.
_FIELD_TO_LDM = {f.name: f.name for f in dataclasses.fields(UNetConfig) if f.init}
# from_ldm reads norm_groups (our tiny models' yaml), not the fields of the relatives the original cannot build.
_LDM_TO_FIELD = {v: k for k, v in _FIELD_TO_LDM.items() if k == "norm_groups" or k not in OUR_EXTENSIONS}
