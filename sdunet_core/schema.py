"""The typed trace: one statement of the model that the API serves, the page reads and the docs describe.

Every fact the page draws is a field here — what each module is (`category`), what it takes (`takes_emb`,
`takes_context`), its layer settings (`conv`, `linear`, `norm`, `attention`, `resample`, ...) — so that nobody
re-derives them from class names. The field descriptions are the documentation: `docs/trace-schema.md` is rendered
from these models (`python -m sdunet_core.schema_doc`) and a test keeps the two equal; the API's OpenAPI schema is
built from the same models.

Layer facts that do not apply are left out of a node's JSON (not written as null), so that a trace stays small.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from .model.categories import CATEGORIES as CATEGORIES  # re-exported: the vocabulary is part of the schema
from .model.categories import BlockCategory, NodeCategory
from .model.config import UNetConfig
from .model.flow import FLOW_OPS as FLOW_OPS  # re-exported with the categories
from .model.flow import FlowOp
from .model.plan import Stage
from .pipeline import Pipeline as Pipeline  # re-exported: part of the trace
from .pipeline import PipelineStage as PipelineStage

# Raised with every new field: the disk cache keys traces on it, so a trace made before the field is never served.
SCHEMA_VERSION = 4

Direction = Literal["down", "up"]
# How a resampler changes the resolution (the descriptions are on ResampleFacts.method).
ResampleMethod = Literal["conv_stride2", "avg_pool", "nearest_conv", "nearest", "resblock_avg_pool", "resblock_nearest"]


class _Out(BaseModel):
    """Output models: unknown fields are a bug, not data."""

    model_config = ConfigDict(extra="forbid")


def _optional(description: str) -> Any:
    # Layer facts that do not apply are omitted from the JSON rather than written as null.
    return Field(None, description=description, exclude_if=lambda v: v is None)


class TensorSpec(_Out):
    shape: list[int] = Field(description="`[batch, channels, *spatial]` for feature maps, `[batch, tokens, width]`")
    dtype: str = Field(description="torch dtype name, e.g. `float32`")


class FlopsByOp(_Out):
    conv: int = Field(description="convolutions")
    linear: int = Field(description="matrix multiplies of Linear layers (`mm`, `addmm`)")
    attention: int = Field(description="the attention matmuls QKᵀ and AV (`bmm`, fused SDPA kernels)")
    other: int = Field(description="any other op torch's FLOP formulas count")


class ConvFacts(_Out):
    dims: int = Field(description="1, 2 or 3")
    in_channels: int = Field(description="input channels")
    out_channels: int = Field(description="output channels")
    kernel: list[int] = Field(description="kernel size per spatial axis")
    stride: list[int] = Field(description="stride per spatial axis")
    padding: list[int] = Field(description="zero padding per spatial axis")
    dilation: list[int] = Field(description="dilation per spatial axis")
    groups: int = Field(description="channel groups (1: every output reads every input)")
    bias: bool = Field(description="has a bias")


class LinearFacts(_Out):
    in_features: int = Field(description="input width")
    out_features: int = Field(description="output width")
    bias: bool = Field(description="has a bias")


class NormFacts(_Out):
    type: Literal["group", "layer"] = Field(description="GroupNorm or LayerNorm")
    channels: int = Field(description="channels (GroupNorm) or the normalised width (LayerNorm)")
    groups: int | None = Field(description="GroupNorm's groups; null for LayerNorm")
    eps: float = Field(description="added to the variance")
    affine: bool = Field(description="learned scale and shift")
    float32: bool = Field(description="computed in float32 whatever the model's dtype (the original GroupNorm32)")


class PoolFacts(_Out):
    type: Literal["avg"] = Field(description="average pooling")
    kernel: list[int] = Field(description="window per spatial axis")
    stride: list[int] = Field(description="stride per spatial axis")


class EmbeddingFacts(_Out):
    num_embeddings: int = Field(description="rows of the table (classes)")
    embedding_dim: int = Field(description="width of each row")


class AttentionScores(_Out):
    """The score matrix softmax(QKᵀ/√d) of one attention call: one weight per (head, query, key) pair."""

    shape: list[int] = Field(
        description="[batch, heads, queries, keys]: queries are the H·W positions, keys the "
        "positions again (self-attention) or the context tokens (cross-attention)"
    )
    elements: int = Field(description="batch × heads × queries × keys")
    bytes_float32: int = Field(description="its memory in float32, if stored whole (4 bytes an element)")
    bytes_float16: int = Field(description="its memory in float16, if stored whole (2 bytes an element)")


class AttentionFacts(_Out):
    kind: Literal[
        "spatial_transformer", "transformer_block", "self_attention", "cross_attention", "attention_block"
    ] = Field(
        description="which attention: a spatial transformer, one of its blocks, attn1/attn2, or a plain attention block"
    )
    channels: int = Field(description="width of the tokens the attention runs on (heads × head_channels)")
    heads: int = Field(description="attention heads")
    head_channels: int = Field(description="channels per head (d in softmax(QKᵀ/√d)·V)")
    depth: int | None = Field(None, description="transformer blocks in a spatial transformer")
    context_dim: int | None = Field(
        None,
        description="width of the context tokens keys and values come from; null when it reads only its own input",
    )
    self_attention_disabled: bool | None = Field(
        None, description="attn1 attends to the context too, so the block has no self-attention (SD x4 upscaler)"
    )
    projection: Literal["linear", "conv"] | None = Field(
        None, description="a spatial transformer's proj_in/proj_out: Linear on tokens (SD 2.x, SDXL) or 1×1 convs"
    )
    qkv_order: Literal["legacy", "new"] | None = Field(
        None, description="a plain attention block's split of qkv: heads first (legacy) or q, k, v first (new)"
    )
    scores: AttentionScores | None = Field(
        None,
        description="the score matrix of one call, from the traced shapes (attn1/attn2 and plain attention blocks); "
        "fused kernels (flash attention) compute it in tiles and never store it whole",
    )


class ResampleFacts(_Out):
    direction: Direction = Field(description="`down` halves, `up` doubles the resolution")
    factor: int = Field(description="how much the resolution changes per spatial axis")
    method: ResampleMethod = Field(
        description="`conv_stride2` 3×3 conv with stride 2; `avg_pool` 2×2 average pool; `nearest_conv` "
        "nearest-neighbour ×2 then a 3×3 conv; `nearest` nearest-neighbour ×2 alone; `resblock_avg_pool` / "
        "`resblock_nearest` a ResBlock that resamples both paths that way between its SiLU and its first conv"
    )


class ResBlockFacts(_Out):
    in_channels: int = Field(description="C: channels in")
    out_channels: int = Field(description="C': channels out")
    emb_channels: int = Field(description="width of the time embedding it reads")
    scale_shift_norm: bool = Field(
        description="the embedding gives a scale and a shift applied after out_layers' norm: norm(h)·(1+scale)+shift; "
        "else it is added to h before out_layers"
    )
    skip: Literal["identity", "conv1x1"] = Field(description="the residual path: identity, or a 1×1 conv (C ≠ C')")
    dropout: float = Field(description="dropout probability inside out_layers (inactive in eval mode)")


class FlowStep(_Out):
    """One step of a module's forward, as its class states it (`flow()`): what the page draws inside a block."""

    op: FlowOp = Field(description="what the step does (see the flow steps below)")
    out: str = Field(
        description="the value it makes, unique in the flow (a `module` step's is the module's path); the last "
        "step's is the module's output"
    )
    inputs: list[str] = Field(
        description="the values it reads: earlier steps' `out`, or the module's own inputs `x`, `emb` (the time "
        "embedding), `context` (the context tokens), `timesteps`, `y`, `hint` (a ControlNet's control image)"
    )
    module: str | None = _optional("op `module`: the child that runs, its path relative to this module")
    text: str | None = _optional("the step in a few plain words (a `module` step: only where its name does not say it)")


class Node(_Out):
    """One module of the model, in `named_modules()` order (parents before children)."""

    path: str = Field(description='the module\'s state-dict prefix (`""` is the root)')
    name: str = Field(description="the last part of the path")
    kind: str = Field(description="the class name")
    category: NodeCategory = Field(description="what the module is (see the vocabulary below)")
    parent: str | None = Field(description="the parent's path; null for the root")
    children: list[str] = Field(description="child paths, in registration order")
    block: str | None = Field(description="the top-level block the module belongs to (itself for a top-level block)")
    stage: Stage | None = Field(description="the stage of its top-level block")
    level: int | None = Field(description="resolution level of its top-level block (0 = full latent resolution)")
    inputs: list[TensorSpec] | None = Field(description="every tensor argument, the time embedding and context too")
    outputs: list[TensorSpec] | None = Field(description="every tensor the module returns")
    called: bool = Field(description="the forward called the module itself (containers walked by hand: false)")
    call_order: int | None = Field(description="position of its first call in the forward")
    order: int | None = Field(
        description="execution order for drawing: `call_order`, or for a container walked by hand its first run "
        "child's; null when it never ran (a ResBlock's identity resampler)"
    )
    takes_emb: bool = Field(description="its forward receives the time embedding as an input")
    takes_context: bool = Field(description="its forward receives the context tokens (e.g. the text) as an input")
    params_own: int = Field(description="parameters of the module alone")
    params: int = Field(description="parameters with its children")
    flops_own: int = Field(description="FLOPs of operations run directly in this module")
    flops: int = Field(description="FLOPs with its children (2 per multiply-add)")
    macs: int = Field(description="flops / 2")
    flops_by_op: FlopsByOp = Field(description="`flops` split by the kind of operation")
    activation_bytes: int = Field(description="bytes of the module's outputs at the traced dtype")
    time_ms: float | None = Field(description="median time over the profiled repeats; null on meta")
    conv: ConvFacts | None = _optional("convolution settings")
    linear: LinearFacts | None = _optional("Linear settings")
    norm: NormFacts | None = _optional("normalisation settings")
    pool: PoolFacts | None = _optional("pooling settings")
    embedding: EmbeddingFacts | None = _optional("Embedding settings")
    attention: AttentionFacts | None = _optional("attention settings (spatial transformers, their blocks, attn1/attn2)")
    resample: ResampleFacts | None = _optional("resampling (Downsample, Upsample, a resampling ResBlock)")
    resblock: ResBlockFacts | None = _optional("ResBlock settings")
    flow: list[FlowStep] | None = _optional(
        "the steps its forward performs, in order, as its class states them (our block classes and the model)"
    )


class Block(_Out):
    """A top-level block of the U, in execution order, embeddings first."""

    path: str = Field(
        description="the top-level module path (`time_embed`, `input_blocks.3`, `middle_block`, `out`, ...)"
    )
    category: BlockCategory = Field(description="what the block is (a top-level node category)")
    stage: Stage = Field(description="`embed`, `down`, `mid`, `up` or `out`")
    level: int | None = Field(description="resolution level (0 = full latent resolution); null for embeddings")
    position: int | None = Field(description="position inside its level: res blocks 0.., then the resampler")
    factor: int = Field(description="downsample factor of its output relative to the latent")
    in_channels: int = Field(description="channels it receives (an up block: the running tensor's plus the skip's)")
    out_channels: int = Field(description="channels it returns")
    attention: list[AttentionFacts] = Field(description="its attention layers (none, or one)")
    resample: ResampleFacts | None = Field(description="how it changes the resolution, if it does")
    skip_from: str | None = Field(description="up blocks: the input block whose output it concatenates")
    skip_channels: int = Field(description="up blocks: the channels of that skip (0 elsewhere)")
    takes_emb: bool = Field(description="it reads the time embedding")
    takes_context: bool = Field(description="it reads the context tokens")


class Skip(_Out):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from", description="the input block whose output is kept")
    to: str = Field(description="the output block that concatenates it")
    channels: int = Field(description="channels of the skip tensor")
    shape: list[int] = Field(description="the skip tensor")
    concat_shape: list[int] = Field(description="what the output block receives after the concatenation")


class TraceInput(_Out):
    batch: int = Field(description="samples in the batch")
    sample_size: list[int] = Field(description="latent size `[H, W]`")
    latent_factor: int = Field(description="image pixels per latent pixel (the autoencoder's factor)")
    image_size: list[int] = Field(description="`sample_size × latent_factor` pixels")
    context_tokens: int | None = Field(description="tokens of the context (77 for CLIP text); null without one")
    x: TensorSpec = Field(description="the noisy latent")
    timesteps: TensorSpec = Field(description="one diffusion timestep per sample")
    context: TensorSpec | None = Field(
        description="the context tokens (text embeddings); null for models without cross-attention"
    )
    y: TensorSpec | None = Field(description="the class / pooled-text input of class-conditional models")


class Totals(_Out):
    params: int = Field(description="parameters of the whole model")
    param_bytes: int = Field(description="weights at the traced dtype")
    flops: int = Field(description="FLOPs of one forward (2 per multiply-add)")
    attention_flops: int = Field(description="the QKᵀ and AV matmuls")
    macs: int = Field(description="flops / 2")
    macs_without_attention: int = Field(description="comparable to published MAC tables, which leave attention out")
    activation_bytes: int = Field(description="sum of every leaf module's outputs")
    peak_activation_bytes: int = Field(
        description="the most activation memory alive at once, with attention by the math kernel, which "
        "materialises the heads × tokens × tokens score matrix"
    )
    peak_activation_bytes_fused: int = Field(
        description="the same with a fused attention kernel (flash / memory-efficient), which never holds the "
        "scores: only its output"
    )
    peak_memory_bytes: int = Field(description="weights + peak activations (math kernel)")
    time_ms: float | None = Field(description="median forward time when profiled, else null")


class Timing(_Out):
    repeats: int = Field(description="timed forwards of each kind (unhooked and hooked)")
    warmup: int = Field(description="untimed forwards first")
    forward_ms: float = Field(description="median of the unhooked forwards")
    forward_ms_all: list[float] = Field(description="every unhooked forward time, in order")
    hooked_forward_ms: float | None = Field(description="median forward with a timing hook on every module")
    clock: str = Field(description="`perf_counter`, or `cuda events`")


class Injection(_Out):
    """One ControlNet output and where it lands in the UNet it steers."""

    index: int = Field(description="its position in the ControlNet's outputs, and in `control.scales`")
    source: str = Field(description="the ControlNet's zero conv that makes it (`zero_convs.4`, `middle_block_out`)")
    from_block: str = Field(
        description="the ControlNet block whose output that zero conv reads (`input_blocks.4`, `middle_block`)"
    )
    target: str = Field(
        description="the UNet block whose output it is added to: an input block (its skip) or `middle_block`"
    )
    added_to: Literal["skip", "middle"] = Field(
        description="`skip`: added to the target's output that the up stage keeps, before an output block "
        "concatenates it; `middle`: added to the middle block's output, the up stage's first input"
    )
    consumer: str = Field(
        description="the UNet output block that receives the sum (the skip's; `output_blocks.0` for the middle)"
    )
    stage: Stage = Field(description="`down` for the skips, `mid` for the middle block")
    level: int = Field(description="resolution level of the target (0 = full latent resolution)")
    factor: int = Field(description="downsample factor of the residual relative to the latent")
    channels: int = Field(description="channels of the residual (those of the target's output)")
    shape: list[int] = Field(description="the residual tensor, equal to the target's output")
    params: int = Field(description="parameters of its zero conv")
    flops: int = Field(description="FLOPs of its zero conv")
    scale: float = Field(description="what the residual is multiplied by before the add (cldm's `control_scales`)")


class ControlInfo(_Out):
    """What a ControlNet trace adds: the control image, its encoder, and every injection into the UNet."""

    kind: Literal["controlnet"] = Field(description="the kind of control model")
    base_preset: str | None = Field(description="the UNet preset it steers (its `blocks` and skips are those named)")
    hint: TensorSpec = Field(description="the control image the hint encoder reads, `[batch, hint_channels, H, W]`")
    hint_channels: int = Field(description="channels of the control image")
    hint_factor: int = Field(description="control image pixels per latent pixel (2 per stride-2 conv)")
    hint_block: str = Field(description="the hint encoder's path (`input_hint_block`)")
    hint_added_to: str = Field(
        description="the ControlNet block whose output the encoded hint is added to (`input_blocks.0`)"
    )
    scales: list[float] = Field(description="the control scale of every injection, in order")
    injections: list[Injection] = Field(description="one per ControlNet output: the input blocks', then the middle's")


def _field_comments(cls: type) -> dict[str, str]:
    """The comment block above each field of a dataclass: the config documents itself there, once."""
    out: dict[str, str] = {}
    comment: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        text = line.strip()
        if text.startswith("#"):
            comment.append(text.lstrip("# "))
            continue
        name = text.split(":", 1)[0]
        if comment and name.isidentifier() and ":" in text:
            out[name] = " ".join(comment)
        comment = []
    return out


def _config_model() -> type[BaseModel]:
    """The UNetConfig dataclass as a pydantic model, field for field (one source: the dataclass)."""
    hints = typing.get_type_hints(UNetConfig)
    comments = _field_comments(UNetConfig)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(UNetConfig):
        if f.init:
            default = ... if f.default is dataclasses.MISSING else f.default
            fields[f.name] = (hints[f.name], Field(default, description=comments.get(f.name)))
    return create_model("UNetConfigModel", __config__=ConfigDict(extra="forbid"), **fields)


UNetConfigModel = _config_model()


class Trace(_Out):
    """The result of `trace_unet` (or `trace_controlnet`): the whole model as data."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    schema_version: Literal[4] = Field(SCHEMA_VERSION, description="the version of this schema")
    preset: str | None = Field(description="the preset name asked for; null for a custom config")
    config: UNetConfigModel = Field(  # type: ignore[valid-type]
        description="the `UNetConfig` in our field names (a ControlNet's: the UNet whose encoder it copies)"
    )
    ldm_params: dict[str, Any] | None = Field(
        description="the same as the original constructor's keywords; null where the original cannot build it "
        "(no middle block or a lone ResBlock there, transformer depths per block: distilled and pruned variants)"
    )
    input: TraceInput = Field(description="what the forward was given")
    device: str = Field(description="`meta` (no weights allocated), `cpu` or `cuda`")
    dtype: str = Field(description="the dtype of weights and activations")
    torch: str = Field(description="torch version")
    totals: Totals = Field(description="whole-model figures")
    timing: Timing | None = Field(description="null on meta")
    blocks: list[Block] = Field(description="the top-level blocks in execution order: the U's skeleton")
    skips: list[Skip] = Field(description="the skip connections, from the down stage to the up stage")
    nodes: list[Node] = Field(description="every module, root first, in `named_modules()` order")
    control: ControlInfo | None = _optional(
        "ControlNets only (omitted otherwise): the control image and where each output is added to the UNet"
    )
    pipeline: Pipeline | None = _optional(
        "UNets only (omitted for a ControlNet): the sampling pipeline around the UNet, stage by stage"
    )

    def node(self, path: str) -> Node:
        return self.node_index[path]

    @cached_property
    def node_index(self) -> dict[str, Node]:
        """Nodes by path."""
        return {n.path: n for n in self.nodes}

    @property
    def unet_config(self) -> UNetConfig:
        return UNetConfig.from_dict(self.config.model_dump())

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()
