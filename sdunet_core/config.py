"""UNet configuration: readable field names, strict validation, and the original yaml form.

`UNetConfig` says plainly what the original `UNetModel.__init__` arguments say with `-1` sentinels and
flags that rewrite each other (CompVis latent-diffusion / stable-diffusion, Stability-AI stablediffusion for
SD 2.x and generative-models `sgm` for SDXL). `from_ldm()` reads a yaml's `unet_config.params` verbatim;
`to_ldm()` writes them back. Every impossible combination is a `ConfigError` naming the field and the value,
raised here, before torch runs.

`plan_blocks()` turns a config into the list of top-level blocks with their channels, resolution factor and
contents. It is the one place that walks the U: validation checks it and `UNetModel` builds from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

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


class ConfigError(ValueError):
    """An impossible or unsupported UNet configuration. `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message

    def __reduce__(self) -> tuple:
        # Picklable with both arguments, so that it crosses from a worker process intact.
        return (type(self), (self.field, self.reason))


@dataclass(frozen=True)
class UNetConfig:
    """Every architectural option of the original UNetModel, under readable names.

    Per-level options accept an int (the same at every level) and are stored as one tuple entry per level.
    """

    in_channels: int
    out_channels: int
    model_channels: int
    # Width of level i is model_channels * channel_mult[i]; the number of levels is len(channel_mult).
    channel_mult: tuple[int, ...]
    # ResBlocks per level on the way down (the way up has one more per level).
    num_res_blocks: tuple[int, ...]
    # Downsample factors (1, 2, 4, ...) at which blocks get attention, as in the original yaml.
    attention_resolutions: tuple[int, ...]
    dropout: float = 0.0
    # Learned 3x3 convolutions for down/upsampling; False means average pooling / plain nearest upsampling.
    conv_resample: bool = True
    # 2 for images; 1 and 3 build the same U with Conv1d / Conv3d (3D resamples height and width only).
    dims: int = 2
    # None, a number of classes (an Embedding), "continuous" (Linear 1 -> emb) or "sequential" (an MLP of
    # adm_in_channels, SDXL's pooled text + size conditioning).
    num_classes: ClassConditioning = None
    adm_in_channels: int | None = None
    # Exactly one of the two: a fixed head count, or a fixed width per head (heads = width // head_channels).
    num_heads: int | None = None
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
    transformer_depth_middle: int | None = None
    # Width of the context tokens; a tuple gives one per transformer block within a SpatialTransformer.
    context_dim: int | tuple[int, ...] | None = None
    # Linear instead of 1x1 conv projections in and out of the transformer (SD 2.x, SDXL).
    use_linear_in_transformer: bool = False
    # Per level: the first attention of each transformer block attends to the context too (x4 upscaler).
    disable_self_attentions: tuple[bool, ...] | None = None
    # Per level: how many of the level's res blocks get attention (the first n); None means all of them.
    num_attention_blocks: tuple[int, ...] | None = None
    disable_middle_self_attn: bool = False
    # A codebook head (id_predictor) for VQ models: the forward returns logits over n_embed codes.
    n_embed: int | None = None
    # Groups of every GroupNorm: 32 in every released model; smaller lets teaching and test models be tiny.
    norm_groups: int = 32
    _levels: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        levels = _as_tuple("channel_mult", self.channel_mult, int)
        if not levels:
            raise ConfigError("channel_mult", "needs at least one level, got []")
        n = len(levels)
        object.__setattr__(self, "channel_mult", levels)
        object.__setattr__(self, "_levels", n)
        object.__setattr__(self, "num_res_blocks", _per_level("num_res_blocks", self.num_res_blocks, n, int))
        object.__setattr__(self, "transformer_depth", _per_level("transformer_depth", self.transformer_depth, n, int))
        object.__setattr__(
            self,
            "attention_resolutions",
            tuple(sorted(set(_as_tuple("attention_resolutions", self.attention_resolutions, int)))),
        )
        if self.disable_self_attentions is not None:
            object.__setattr__(
                self,
                "disable_self_attentions",
                _per_level("disable_self_attentions", self.disable_self_attentions, n, bool),
            )
        if self.num_attention_blocks is not None:
            object.__setattr__(
                self, "num_attention_blocks", _per_level("num_attention_blocks", self.num_attention_blocks, n, int)
            )
        if isinstance(self.context_dim, (list, tuple)):
            object.__setattr__(self, "context_dim", _as_tuple("context_dim", self.context_dim, int))
        if self.transformer_depth_middle is None and self.use_spatial_transformer:
            # The original takes the deepest level's depth for the middle block (SDXL: 10).
            object.__setattr__(self, "transformer_depth_middle", self.transformer_depth[-1])
        _validate(self)

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
            raise ConfigError(unknown[0], f"unknown key in the original UNet parameters: {unknown}")
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

    def to_ldm(self) -> dict[str, Any]:
        """The original constructor's keyword arguments for this architecture."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if not f.init:
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
        return {
            f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
            for f in dataclasses.fields(self)
            if f.init
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNetConfig:
        """Our field names; unknown keys are a ConfigError."""
        if not isinstance(data, dict):
            raise ConfigError("config", f"must be a mapping, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(map(str, set(data) - names))
        if unknown:
            raise ConfigError(unknown[0], f"unknown config field(s) {unknown}; known: {sorted(names)}")
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


# Our field name -> the original keyword. Only the names that differ are renamed; the original ones read well.
_FIELD_TO_LDM = {f.name: f.name for f in dataclasses.fields(UNetConfig) if f.init}
_LDM_TO_FIELD = {v: k for k, v in _FIELD_TO_LDM.items()}


# ---- the plan of the U ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttentionPlan:
    """One attention layer inside a block: a SpatialTransformer or a plain AttentionBlock."""

    kind: Literal["spatial_transformer", "attention_block"]
    channels: int
    heads: int
    head_channels: int
    depth: int = 1
    context_dims: tuple[int | None, ...] = ()
    disable_self_attn: bool = False


@dataclass(frozen=True)
class BlockPlan:
    """One top-level block of the U, with what it holds and where it sits."""

    path: str  # "input_blocks.3", "middle_block", "output_blocks.0", ...
    stage: Literal["embed", "down", "mid", "up", "out"]
    level: int | None  # resolution level (0 = full latent resolution); None for embeddings
    role: str
    factor: int  # downsample factor of the block's output relative to the latent
    in_channels: int
    out_channels: int
    attention: tuple[AttentionPlan, ...] = ()
    resample: Literal["down", "up"] | None = None
    skip_from: str | None = None  # for output blocks: the input block whose output is concatenated
    skip_channels: int = 0


def plan_blocks(cfg: UNetConfig) -> list[BlockPlan]:
    """Walk the U the way the original constructor does and describe every top-level block."""
    mc = cfg.model_channels
    blocks: list[BlockPlan] = []
    blocks.append(BlockPlan("input_blocks.0", "down", 0, "input_conv", 1, cfg.in_channels, mc))
    skips: list[tuple[str, int]] = [("input_blocks.0", mc)]
    ch, factor, index = mc, 1, 1

    def attention(level: int, nr: int, width: int, upsample: bool) -> tuple[AttentionPlan, ...]:
        if factor not in cfg.attention_resolutions:
            return ()
        if cfg.num_attention_blocks is not None and nr >= cfg.num_attention_blocks[level]:
            return ()
        heads, head_ch = cfg.heads_for(width, upsample=upsample)
        if cfg.use_spatial_transformer:
            depth = cfg.transformer_depth[level]
            disabled = bool(cfg.disable_self_attentions[level]) if cfg.disable_self_attentions else False
            return (
                AttentionPlan(
                    "spatial_transformer", width, heads, head_ch, depth, tuple(cfg.context_dims_for(depth)), disabled
                ),
            )
        return (AttentionPlan("attention_block", width, heads, head_ch),)

    for level, mult in enumerate(cfg.channel_mult):
        for nr in range(cfg.num_res_blocks[level]):
            width = mult * mc
            attn = attention(level, nr, width, upsample=False)
            role = "down_block_attn" if attn else "down_block"
            blocks.append(BlockPlan(f"input_blocks.{index}", "down", level, role, factor, ch, width, attn))
            ch = width
            skips.append((f"input_blocks.{index}", ch))
            index += 1
        if level != cfg.num_levels - 1:
            blocks.append(
                BlockPlan(f"input_blocks.{index}", "down", level, "downsample", factor * 2, ch, ch, resample="down")
            )
            skips.append((f"input_blocks.{index}", ch))
            index += 1
            factor *= 2

    mid_attn: tuple[AttentionPlan, ...]
    heads, head_ch = cfg.heads_for(ch)
    if cfg.use_spatial_transformer:
        depth = cfg.transformer_depth_middle or 1
        mid_attn = (
            AttentionPlan(
                "spatial_transformer",
                ch,
                heads,
                head_ch,
                depth,
                tuple(cfg.context_dims_for(depth)),
                cfg.disable_middle_self_attn,
            ),
        )
    else:
        mid_attn = (AttentionPlan("attention_block", ch, heads, head_ch),)
    blocks.append(BlockPlan("middle_block", "mid", cfg.num_levels - 1, "middle_block", factor, ch, ch, mid_attn))

    index = 0
    for level in reversed(range(cfg.num_levels)):
        width = cfg.channel_mult[level] * mc
        for i in range(cfg.num_res_blocks[level] + 1):
            skip_path, skip_ch = skips.pop()
            attn = attention(level, i, width, upsample=True)
            up = level > 0 and i == cfg.num_res_blocks[level]
            role = ("up_block_attn" if attn else "up_block") + ("_upsample" if up else "")
            out_factor = factor // 2 if up else factor
            blocks.append(
                BlockPlan(
                    f"output_blocks.{index}",
                    "up",
                    level,
                    role,
                    out_factor,
                    ch + skip_ch,
                    width,
                    attn,
                    resample="up" if up else None,
                    skip_from=skip_path,
                    skip_channels=skip_ch,
                )
            )
            ch = width
            factor = out_factor
            index += 1
    blocks.append(BlockPlan("out", "out", 0, "output", 1, ch, cfg.out_channels))
    if cfg.n_embed is not None:
        blocks.append(BlockPlan("id_predictor", "out", 0, "codebook_head", 1, ch, cfg.n_embed))
    return blocks


# ---- validation --------------------------------------------------------------------------------------------
def _as_tuple(name: str, value: Any, kind: type) -> tuple:
    if isinstance(value, (list, tuple)):
        items = tuple(value)
    else:
        raise ConfigError(name, f"must be a list, got {value!r}")
    for item in items:
        if kind is int and (isinstance(item, bool) or not isinstance(item, int)):
            raise ConfigError(name, f"entries must be integers, got {value!r}")
        if kind is bool and not isinstance(item, bool):
            raise ConfigError(name, f"entries must be true/false, got {value!r}")
    return items


def _per_level(name: str, value: Any, levels: int, kind: type) -> tuple:
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return (value,) * levels
    items = _as_tuple(name, value, kind)
    if len(items) == 1 and kind is int:
        return items * levels
    if len(items) != levels:
        raise ConfigError(name, f"needs one entry per level ({levels} levels in channel_mult), got {list(items)}")
    return items


def _positive(cfg: UNetConfig, *names: str, required: bool = False) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value is None and not required:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, f"must be an integer, got {value!r}")
        if value < 1:
            raise ConfigError(name, f"must be positive, got {value}")


def _validate(cfg: UNetConfig) -> None:
    _positive(cfg, "in_channels", "out_channels", "model_channels", "norm_groups", required=True)
    _positive(cfg, "adm_in_channels", "n_embed")
    # Lists before transformer_depth_middle, which defaults to the last depth: name the field that was given.
    for name in ("channel_mult", "num_res_blocks", "transformer_depth", "attention_resolutions"):
        values = getattr(cfg, name)
        if any(v < 1 for v in values):
            raise ConfigError(name, f"entries must be positive, got {list(values)}")
    _positive(cfg, "num_heads", "num_head_channels", "num_heads_upsample", "transformer_depth_middle")
    if cfg.num_attention_blocks is not None:
        for level, (n, r) in enumerate(zip(cfg.num_attention_blocks, cfg.num_res_blocks, strict=True)):
            if n < 0 or n > r:
                raise ConfigError(
                    "num_attention_blocks", f"level {level}: {n} must be between 0 and num_res_blocks[{level}]={r}"
                )
    for name in (
        "conv_resample",
        "use_scale_shift_norm",
        "resblock_updown",
        "use_new_attention_order",
        "use_spatial_transformer",
        "use_linear_in_transformer",
        "disable_middle_self_attn",
    ):
        if not isinstance(getattr(cfg, name), bool):
            raise ConfigError(name, f"must be true or false, got {getattr(cfg, name)!r}")
    if isinstance(cfg.dropout, bool) or not isinstance(cfg.dropout, (int, float)) or not 0 <= cfg.dropout < 1:
        raise ConfigError("dropout", f"must be a number in [0, 1), got {cfg.dropout!r}")
    if not isinstance(cfg.dims, int) or isinstance(cfg.dims, bool) or cfg.dims not in (1, 2, 3):
        raise ConfigError("dims", f"must be 1, 2 or 3, got {cfg.dims!r}")
    if cfg.channel_mult[0] != 1:
        # The original's output conv reads model_channels, so the first level must be model_channels wide.
        raise ConfigError(
            "channel_mult",
            f"the first level must be 1 (the output conv reads model_channels), got {list(cfg.channel_mult)}",
        )

    # Heads: exactly one of the two ways to say it.
    if (cfg.num_heads is None) == (cfg.num_head_channels is None):
        raise ConfigError(
            "num_heads",
            f"give exactly one of num_heads and num_head_channels, got num_heads={cfg.num_heads}, "
            f"num_head_channels={cfg.num_head_channels}",
        )
    if cfg.num_heads_upsample is not None and cfg.num_heads is None:
        raise ConfigError("num_heads_upsample", "only applies with num_heads, not with num_head_channels")

    # Conditioning inputs.
    if cfg.use_spatial_transformer and cfg.context_dim is None:
        raise ConfigError("context_dim", "a spatial transformer needs context_dim (the width of the context tokens)")
    if not cfg.use_spatial_transformer:
        for name in ("context_dim",):
            if getattr(cfg, name) is not None:
                raise ConfigError(name, f"{getattr(cfg, name)!r} given without use_spatial_transformer")
        if cfg.disable_self_attentions is not None or cfg.disable_middle_self_attn:
            raise ConfigError("disable_self_attentions", "only applies with use_spatial_transformer")
        if cfg.use_linear_in_transformer:
            raise ConfigError("use_linear_in_transformer", "only applies with use_spatial_transformer")
    if cfg.context_dim is not None:
        dims = cfg.context_dim if isinstance(cfg.context_dim, tuple) else (cfg.context_dim,)
        if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
            raise ConfigError("context_dim", f"must be a positive integer or a list of them, got {cfg.context_dim!r}")
        if isinstance(cfg.context_dim, tuple) and len(set(cfg.context_dim)) > 1:
            # One width per transformer block: every SpatialTransformer must be exactly that deep (sgm would fall
            # back to the first width with a warning; we refuse instead of silently changing the model).
            attended = [lv for lv in range(cfg.num_levels) if 2**lv in cfg.attention_resolutions]
            depths = {cfg.transformer_depth[lv] for lv in attended} | {cfg.transformer_depth_middle}
            if depths != {len(cfg.context_dim)}:
                raise ConfigError(
                    "context_dim",
                    f"{list(cfg.context_dim)} gives one width per transformer block, but the depths are "
                    f"{sorted(depths)}",
                )
    if cfg.use_spatial_transformer and cfg.dims != 2:
        raise ConfigError("dims", f"spatial transformers work on images only (dims=2), got dims={cfg.dims}")
    nc = cfg.num_classes
    if nc is not None:
        if isinstance(nc, bool) or not (isinstance(nc, int) or nc in ("continuous", "sequential")):
            raise ConfigError(
                "num_classes", f"must be null, a number of classes, 'continuous' or 'sequential', got {nc!r}"
            )
        if isinstance(nc, int) and nc < 1:
            raise ConfigError("num_classes", f"must be positive, got {nc}")
    if nc == "sequential" and cfg.adm_in_channels is None:
        raise ConfigError("adm_in_channels", "num_classes='sequential' needs adm_in_channels (the width of y)")
    if cfg.adm_in_channels is not None and nc != "sequential":
        raise ConfigError("adm_in_channels", f"only applies with num_classes='sequential', got num_classes={nc!r}")

    # Widths: every GroupNorm's channels divide by the groups, every attention's width by its heads.
    g = cfg.norm_groups
    for block in plan_blocks(cfg):
        for name, width in (("in", block.in_channels), ("out", block.out_channels)):
            if block.role in ("input_conv",) or (block.path in ("out", "id_predictor") and name == "out"):
                continue
            if width % g:
                raise ConfigError(
                    "norm_groups",
                    f"{block.path} normalizes {width} channels, not divisible by norm_groups={g} "
                    f"(model_channels={cfg.model_channels}, channel_mult={list(cfg.channel_mult)})",
                )
        for attn in block.attention:
            field_name = "num_head_channels" if cfg.num_head_channels is not None else "num_heads"
            heads = attn.heads
            if cfg.num_head_channels is not None and attn.channels % cfg.num_head_channels:
                raise ConfigError(
                    field_name, f"{cfg.num_head_channels} does not divide the width {attn.channels} of {block.path}"
                )
            if cfg.num_head_channels is None and attn.channels % heads:
                name = "num_heads_upsample" if block.stage == "up" and cfg.num_heads_upsample else field_name
                raise ConfigError(name, f"{heads} heads do not divide the width {attn.channels} of {block.path}")
