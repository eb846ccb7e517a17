"""Render docs/trace-schema.md from the typed trace (`schema.py`): the models' field descriptions are the text.

`python -m sdunet_core.schema_doc > docs/trace-schema.md` rewrites the file; a test checks it is current.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel

from . import schema
from .model.categories import BlockCategory

_INTRO = """# Trace JSON schema (schema_version {version})

`POST /api/trace` and `sdunet-explorer trace --json` return the JSON form of `sdunet_core.trace_unet(...)`, a
`sdunet_core.Trace`. This page is generated from the models in `sdunet_core/schema.py`
(`python -m sdunet_core.schema_doc > docs/trace-schema.md`); the API's OpenAPI schema comes from the same models.
All sizes are in elements or bytes, all FLOPs count 2 per multiply-add, shapes are `[batch, channels, *spatial]`.
Layer facts (`conv`, `linear`, `norm`, `pool`, `embedding`, `attention`, `resample`, `resblock`) and a block's
`flow` appear on a node only where they apply.
"""

_INVARIANTS = """## Invariants (tested)

A node's `params` = `params_own` + its children's `params`; its `flops` = `flops_own` + its children's `flops`;
the root's `flops` equals `torch.utils.flop_counter.FlopCounterMode`'s total for a plain forward; the set of paths
equals `named_modules()`; a preset is labelled with the name asked for and traced at its reference input.
"""

_SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("The trace", schema.Trace),
    ("`config`", schema.UNetConfigModel),
    ("`input`", schema.TraceInput),
    ("`totals`", schema.Totals),
    ("`timing`", schema.Timing),
    ("A block (`blocks[]`)", schema.Block),
    ("A skip (`skips[]`)", schema.Skip),
    ("A node (`nodes[]`)", schema.Node),
    ("`flops_by_op`", schema.FlopsByOp),
    ("`conv`", schema.ConvFacts),
    ("`linear`", schema.LinearFacts),
    ("`norm`", schema.NormFacts),
    ("`pool`", schema.PoolFacts),
    ("`embedding`", schema.EmbeddingFacts),
    ("`attention`", schema.AttentionFacts),
    ("`attention.scores`", schema.AttentionScores),
    ("`resample`", schema.ResampleFacts),
    ("`resblock`", schema.ResBlockFacts),
    ("A flow step (`flow[]`)", schema.FlowStep),
    ("A tensor (`{shape, dtype}`)", schema.TensorSpec),
    ("`control` (ControlNets)", schema.ControlInfo),
    ("An injection (`control.injections[]`)", schema.Injection),
    ("`pipeline` (UNets)", schema.Pipeline),
    ("A pipeline stage (`pipeline.stages[]`)", schema.PipelineStage),
]


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a!r}`".replace("'", '"') for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "object"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return getattr(annotation, "__name__", str(annotation))


def _table(model: type[BaseModel]) -> list[str]:
    rows = ["| key | type | meaning |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        key = field.alias or name
        text = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{key}` | {_type_name(field.annotation)} | {text} |")
    return rows


def render() -> str:
    lines = [_INTRO.format(version=schema.SCHEMA_VERSION)]
    for title, model in _SECTIONS:
        lines += [f"## {title}", ""]
        if model.__doc__ and model.__module__ == schema.__name__ and not model.__doc__.startswith("Output models"):
            lines += [model.__doc__.strip(), ""]
        lines += [*_table(model), ""]
    lines += ["## Node categories", "", "`category` is one of these (top-level blocks first):", ""]
    lines += ["| category | what it is |", "|---|---|"]
    lines += [f"| `{name}` | {text} |" for name, text in schema.CATEGORIES.items()]
    lines += ["", "A block's `category` is one of the top-level ones: "]
    lines[-1] += ", ".join(f"`{c}`" for c in typing.get_args(BlockCategory)) + "."
    lines += ["", "## Flow steps", "", "A flow step's `op` is one of these:", ""]
    lines += ["| op | what it does |", "|---|---|"]
    lines += [f"| `{name}` | {text.replace('|', chr(92) + '|')} |" for name, text in schema.FLOW_OPS.items()]
    lines += ["", _INVARIANTS]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
