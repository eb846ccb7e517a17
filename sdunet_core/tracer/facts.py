"""What each module of a built model is, for the trace: its category, what it takes, and its layer settings.

Our own classes state their category and facts themselves (`model/blocks.py`, `attention.py`, `unet.py`); torch's
built-in layers are read here from their attributes. Top-level blocks take their category from the model's plan
(`UNetModel.block_map`), because a `TimestepEmbedSequential` is a down block, an up block or a downsample block
by where it sits, not by its class.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..model.blocks import GroupNorm32
from ..model.plan import BlockPlan

_BUILTIN_CATEGORY: tuple[tuple[type[nn.Module] | tuple[type[nn.Module], ...], str], ...] = (
    ((nn.Conv1d, nn.Conv2d, nn.Conv3d), "conv"),
    (nn.Linear, "linear"),
    ((nn.GroupNorm, nn.LayerNorm), "norm"),
    ((nn.SiLU, nn.GELU), "activation"),
    (nn.Dropout, "dropout"),
    (nn.Identity, "identity"),
    ((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d), "pool"),
    (nn.Embedding, "embedding"),
    ((nn.Sequential, nn.ModuleList), "sequence"),
)


def category_of(path: str, module: nn.Module, block_map: dict[str, BlockPlan]) -> str:
    """The module's category in the trace's vocabulary (sdunet_core.model.categories.CATEGORIES)."""
    if path in block_map:
        return block_map[path].category
    if path in ("input_blocks", "output_blocks", "zero_convs"):  # zero_convs: a ControlNet's list of them
        return "stage"
    own = getattr(module, "category", None)
    if isinstance(own, str):
        return own
    for types, category in _BUILTIN_CATEGORY:
        if isinstance(module, types):
            return category
    raise TypeError(f"{path} is a {type(module).__name__}, which has no category in the trace schema")


def _pair(value: Any, dims: int) -> list[int]:
    return list(value) if isinstance(value, (tuple, list)) else [int(value)] * dims


def layer_facts(module: nn.Module) -> dict[str, Any]:
    """The schema's layer facts of one module: {"conv": {...}}, {"attention": {...}, ...} or {}."""
    own = getattr(module, "facts", None)
    if callable(own):
        return own()
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        dims = len(module.kernel_size)
        padding = module.padding if not isinstance(module.padding, str) else (0,) * dims
        return {
            "conv": {
                "dims": dims,
                "in_channels": module.in_channels,
                "out_channels": module.out_channels,
                "kernel": list(module.kernel_size),
                "stride": list(module.stride),
                "padding": list(padding),
                "dilation": list(module.dilation),
                "groups": module.groups,
                "bias": module.bias is not None,
            }
        }
    if isinstance(module, nn.Linear):
        linear = {
            "in_features": module.in_features,
            "out_features": module.out_features,
            "bias": module.bias is not None,
        }
        return {"linear": linear}
    if isinstance(module, nn.GroupNorm):
        norm = {"type": "group", "channels": module.num_channels, "groups": module.num_groups, "eps": module.eps}
        return {"norm": {**norm, "affine": module.affine, "float32": isinstance(module, GroupNorm32)}}
    if isinstance(module, nn.LayerNorm):
        norm = {"type": "layer", "channels": module.normalized_shape[-1], "groups": None, "eps": module.eps}
        return {"norm": {**norm, "affine": module.elementwise_affine, "float32": False}}
    if isinstance(module, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        dims = {nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3}[type(module)]
        pool = {"type": "avg", "kernel": _pair(module.kernel_size, dims), "stride": _pair(module.stride, dims)}
        return {"pool": pool}
    if isinstance(module, nn.Embedding):
        return {"embedding": {"num_embeddings": module.num_embeddings, "embedding_dim": module.embedding_dim}}
    return {}


def flow_of(module: nn.Module) -> dict[str, Any]:
    """{"flow": [...]} for a module whose class states the steps of its forward (`flow()`), else {}."""
    own = getattr(module, "flow", None)
    return {"flow": own()} if callable(own) else {}


# Modules that compute softmax(QKᵀ/√d)·V themselves, so one call makes one score matrix.
_SCORING = ("self_attention", "cross_attention", "attention_block")


def attention_scores(category: str, attention: dict[str, Any] | None, inputs: list[dict] | None) -> dict | None:
    """The score matrix of one attention call, from the traced input shapes: [batch, heads, queries, keys] and its
    memory in float32 and float16. None for modules that do not score (transformer blocks, spatial transformers).

    attn1/attn2 run on tokens [B, N, C] (keys from the context [B, M, C'] when there is one); a plain attention
    block runs on the map [B, C, H, W] and attends over its H·W positions."""
    if category not in _SCORING or not attention or not inputs:
        return None
    x = inputs[0]["shape"]
    if category == "attention_block":
        queries = 1
        for size in x[2:]:
            queries *= size
        keys = queries
    else:
        queries = x[1]
        # Keys come from the context when the call got one (cross-attention, or attn1 of the x4 upscaler).
        keys = inputs[1]["shape"][1] if len(inputs) > 1 else queries
    shape = [x[0], attention["heads"], queries, keys]
    elements = shape[0] * shape[1] * queries * keys
    return {"shape": shape, "elements": elements, "bytes_float32": 4 * elements, "bytes_float16": 2 * elements}


def feeds(model: nn.Module) -> tuple[set[str], set[str]]:
    """(paths whose forward receives the time embedding, paths that receive the context tokens).

    A module says so itself (`takes_emb`, `takes_context`); a block names the children whose input is the
    embedding (`emb_inputs`, a ResBlock's emb_layers) or the context (`context_inputs`, a cross-attention's to_k and
    to_v).
    """
    emb: set[str] = set()
    ctx: set[str] = set()
    for path, module in model.named_modules():
        prefix = f"{path}." if path else ""
        if getattr(module, "takes_emb", False):
            emb.add(path)
        if getattr(module, "takes_context", False):
            ctx.add(path)
        emb.update(prefix + child for child in getattr(module, "emb_inputs", ()))
        ctx.update(prefix + child for child in getattr(module, "context_inputs", ()))
    return emb, ctx
