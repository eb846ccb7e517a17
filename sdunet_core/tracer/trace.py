"""trace_unet: one forward pass that records the module tree, tensor shapes, parameters, FLOPs, memory and timings.

Structure, shapes and FLOPs come from the meta device (`structure.py`, `counting.py`): no weights are allocated
and a full SD model traces in a fraction of a second. Timings (device "cpu" or "cuda") come from a second, real
run with per-module hooks (`timing.py`). The result is a typed `Trace` (`sdunet_core/schema.py`), documented in
docs/trace-schema.md.

A lock serializes the meta passes: they hold the GIL anyway, and one at a time keeps peak memory predictable.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import torch

from ..errors import ConfigError
from ..model.config import UNetConfig
from ..model.unet import UNetModel
from ..pipeline import pipeline_for
from ..presets import Preset
from ..schema import SCHEMA_VERSION, Block, Node, Skip, Timing, Totals, Trace, TraceInput
from .counting import FlopAndMemoryMode, TraceTimeout
from .inputs import (
    Model,
    as_model,
    default_context_tokens,
    default_sample_size,
    dtype_name,
    make_inputs,
    parse_dtype,
    positive_int,
)
from .memo import MemoCache
from .structure import Recorder, describe_modules, record_nodes, tensor_spec
from .timing import MemoryLimitError, Progress, available_bytes, run_memory_bytes, time_modules

__all__ = [
    "SCHEMA_VERSION",
    "MemoryLimitError",
    "Trace",
    "TraceTimeout",
    "available_bytes",
    "default_sample_size",
    "parse_dtype",
    "run_memory_bytes",
    "trace_totals",
    "trace_unet",
]

_META_LOCK = threading.Lock()
_DEVICES = ("meta", "cpu", "cuda")
_ATTENTION_LAYERS = ("spatial_transformer", "attention_block")


def _build(config: UNetConfig, device: torch.device | str, dtype: torch.dtype | None) -> UNetModel:
    with torch.device(device):
        model = UNetModel(config)
    if dtype is not None:
        model = model.to(dtype=dtype)
    return model.eval()


def _blocks(model: UNetModel, by_path: dict[str, Node]) -> list[Block]:
    out = []
    for b in model.block_map.values():
        node = by_path[b.path]
        kids = [by_path[c] for c in node.children]
        # The block's own layers say what they are: the plan decided, the modules state it.
        attention = [k.attention for k in kids if k.attention and k.category in _ATTENTION_LAYERS]
        out.append(
            Block(
                path=b.path,
                category=b.category,
                stage=b.stage,
                level=b.level,
                position=b.position,
                factor=b.factor,
                in_channels=b.in_channels,
                out_channels=b.out_channels,
                attention=attention,
                resample=next((k.resample for k in kids if k.resample), None),
                skip_from=b.skip_from,
                skip_channels=b.skip_channels,
                takes_emb=node.takes_emb,
                takes_context=node.takes_context,
            )
        )
    return out


def _skips(model: UNetModel, by_path: dict[str, Node]) -> list[Skip]:
    out = []
    for b in model.plan:
        if b.skip_from is None:
            continue
        shape = by_path[b.skip_from].outputs[0].shape  # type: ignore[index]
        concat = by_path[b.path].inputs[0].shape  # type: ignore[index]
        out.append(Skip(from_=b.skip_from, to=b.path, channels=b.skip_channels, shape=shape, concat_shape=concat))
    return out


def _totals(records: list[dict[str, Any]], mode: FlopAndMemoryMode, elem: int) -> Totals:
    """Whole-model figures from the node records (the root first) and the counting mode."""
    root = records[0]
    params, flops, attention = root["params"], root["flops"], root["flops_by_op"]["attention"]
    return Totals(
        params=params,
        param_bytes=params * elem,
        flops=flops,
        attention_flops=attention,
        macs=flops // 2,
        macs_without_attention=(flops - attention) // 2,
        activation_bytes=sum(r["activation_bytes"] for r in records if not r["children"]),
        peak_activation_bytes=mode.math.peak,
        peak_activation_bytes_fused=mode.fused.peak,
        peak_memory_bytes=params * elem + mode.math.peak,
        time_ms=None,
    )


def _check_run(device: str, dtype: torch.dtype, repeats: int) -> None:
    if device not in _DEVICES:
        raise ConfigError("device", f"must be 'meta', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA is not available on this machine")
    if device == "cpu" and dtype == torch.float16:
        raise ConfigError("dtype", "float16 is for CUDA; use float32 or bfloat16 on the CPU")
    positive_int("repeats", repeats)


def _trace_input(
    latent_factor: int,
    sample_size: tuple[int, ...],
    batch: int,
    tokens: int | None,
    inputs: dict[str, torch.Tensor | None],
) -> TraceInput:
    """What the forward was given; `inputs` are the model's own arguments (x, timesteps, context, y)."""
    return TraceInput(
        batch=batch,
        sample_size=list(sample_size),
        latent_factor=latent_factor,
        image_size=[s * latent_factor for s in sample_size],
        context_tokens=tokens,
        **{k: (tensor_spec(v) if v is not None else None) for k, v in inputs.items()},
    )


def _meta_trace(
    m: Model, sample_size: tuple[int, ...], batch: int, tokens: int | None, dtype: torch.dtype, deadline: float | None
) -> Trace:
    """Structure, shapes, FLOPs and memory from one forward on the meta device."""
    with _META_LOCK:
        model = _build(m.config, "meta", dtype)
        inputs = make_inputs(m.config, sample_size, batch, tokens, "meta", dtype)
        records, mode = record_nodes(model, inputs, deadline)
    totals = _totals(records, mode, torch.empty((), dtype=dtype).element_size())
    nodes = [Node.model_validate(r) for r in records]
    by_path = {n.path: n for n in nodes}
    trace_input = _trace_input(m.latent_factor, sample_size, batch, tokens, inputs)
    return Trace(
        preset=m.name,
        config=m.config.to_dict(),
        ldm_params=m.config.to_ldm_or_none(),
        input=trace_input,
        device="meta",
        dtype=dtype_name(dtype),
        torch=torch.__version__,
        totals=totals,
        timing=None,
        blocks=_blocks(model, by_path),
        skips=_skips(model, by_path),
        nodes=nodes,
        pipeline=pipeline_for(m.preset, m.config, trace_input),
    )


def _timed_run(
    trace: Trace,
    m: Model,
    device: str,
    dtype: torch.dtype,
    run: dict[str, Any],
    state_dict: dict[str, torch.Tensor] | None,
    progress: Progress | None,
) -> None:
    """Time every module on a real device, in place on `trace` (nodes' time_ms, totals.time_ms, timing)."""
    dev = torch.device(device)
    need = run_memory_bytes(trace.totals.params, trace.totals.peak_activation_bytes, device, dtype)
    free = available_bytes(dev)
    if need > free:
        raise MemoryLimitError(
            f"a timed {device} run needs about {need / 2**30:.1f} GiB (weights + activations); "
            f"only {free / 2**30:.1f} GiB is free"
        )
    if progress:
        progress("building", 0, 1)
    torch.manual_seed(run["seed"])
    model = _build(m.config, "cpu", None)
    if state_dict is not None:
        model.load_state_dict(state_dict, strict=True)
    model = model.to(device=dev, dtype=dtype)
    gen = torch.Generator().manual_seed(run["seed"])
    inp = trace.input
    inputs = make_inputs(m.config, tuple(inp.sample_size), inp.batch, inp.context_tokens, dev, dtype, gen)
    if progress:
        progress("building", 1, 1)
    times, forward_ms = time_modules(model, inputs, dev, run["repeats"], run["warmup"], progress)
    for node in trace.nodes:
        node.time_ms = times.get(node.path)
    trace.totals.time_ms = statistics.median(forward_ms)
    trace.device = device
    trace.timing = Timing(
        repeats=run["repeats"],
        warmup=run["warmup"],
        forward_ms=statistics.median(forward_ms),
        forward_ms_all=forward_ms,
        hooked_forward_ms=times.get(""),
        clock="cuda events" if dev.type == "cuda" else "perf_counter",
    )


def trace_unet(
    config: UNetConfig | Preset | str,
    *,
    sample_size: tuple[int, ...] | None = None,
    batch: int = 1,
    context_tokens: int | None = None,
    device: str = "meta",
    dtype: str | torch.dtype | None = None,
    repeats: int = 3,
    warmup: int = 1,
    state_dict: dict[str, torch.Tensor] | None = None,
    progress: Progress | None = None,
    seed: int = 0,
    time_limit_s: float | None = None,
) -> Trace:
    """Trace one forward pass of a UNet: a config, a `Preset` (`load_preset("sd2-v")`) or a preset's name.

    A preset is traced at its reference input and labelled with its name; a config at 64 latent pixels per side.
    sample_size is the latent size (H, W); context_tokens defaults to the preset's (77 for text models). On "meta"
    nothing is allocated and time_ms stays null; on "cpu" or "cuda" the model is built with seeded random weights
    (or `state_dict`) and every module is timed. time_limit_s bounds the meta pass (TraceTimeout past it).
    """
    m = as_model(config)
    positive_int("batch", batch)
    if context_tokens is not None:
        positive_int("context_tokens", context_tokens)
    tokens = (context_tokens or default_context_tokens(m)) if m.config.use_spatial_transformer else None
    size = tuple(sample_size) if sample_size is not None else default_sample_size(m)
    m.config.check_sample_size(size)
    torch_dtype = parse_dtype(dtype)
    _check_run(device, torch_dtype, repeats)

    if progress:
        progress("building", 0, 1)
    deadline = time.monotonic() + time_limit_s if time_limit_s is not None else None
    trace = _meta_trace(m, size, batch, tokens, torch_dtype, deadline)
    if device != "meta":
        run = {"repeats": repeats, "warmup": warmup, "seed": seed}
        _timed_run(trace, m, device, torch_dtype, run, state_dict, progress)
    if progress:
        progress("done", 1, 1)
    return trace


def trace_totals(
    config: UNetConfig | Preset | str,
    sample_sizes: list[tuple[int, ...]],
    *,
    batch: int = 1,
    context_tokens: int | None = None,
    time_limit_s: float | None = None,
) -> list[tuple[TraceInput, Totals]]:
    """Whole-model figures at several latent sizes, for a scaling curve: the same numbers as `trace_unet(...).totals`
    at each size, from one meta model built once and without assembling the node list."""
    m = as_model(config)
    positive_int("batch", batch)
    tokens = (context_tokens or default_context_tokens(m)) if m.config.use_spatial_transformer else None
    for size in sample_sizes:
        m.config.check_sample_size(tuple(size))
    deadline = time.monotonic() + time_limit_s if time_limit_s is not None else None
    out = []
    with _META_LOCK:
        model = _build(m.config, "meta", torch.float32)
        described = describe_modules(model)
        with Recorder(model, MemoCache()) as recorder:  # hooks and replays installed once for every size
            for size in sample_sizes:
                inputs = make_inputs(m.config, tuple(size), batch, tokens, "meta", torch.float32)
                records, mode = record_nodes(model, inputs, deadline, described=described, recorder=recorder)
                out.append(
                    (_trace_input(m.latent_factor, tuple(size), batch, tokens, inputs), _totals(records, mode, 4))
                )
    return out
