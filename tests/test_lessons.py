"""The shipped lessons tell the truth: every figure in their text is one the trace of the model gives (or derives
from it by a sum or a ratio written here), so a change of the model family that changes a figure fails here
instead of leaving a lesson that teaches a wrong number. Names (`input_blocks.10`, "SD 1.5") are not figures."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from sdunet_core.tracer.trace import trace_unet

LESSONS = Path(__file__).parent.parent / "static" / "lessons"
NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Names with digits in them: code spans (module paths), model names, the text encoders'.
NAMES = re.compile(r"`[^`]*`|SD ?1\.[45x]|SD ?2(?:\.[01x])?|SDXL")


@cache
def _trace(preset: str, size: int) -> dict:
    return json.loads(trace_unet(preset, sample_size=(size // 8, size // 8)).to_json())


def _facts(t: dict) -> set[str]:
    """Every figure one trace vouches for, as the lessons write it (M and G with one decimal, shares in %)."""
    c, totals, nodes = t["config"], t["totals"], {n["path"]: n for n in t["nodes"]}
    out = {f"{totals['params'] / 1e6:.1f}", f"{totals['flops'] / 1e9:.1f}", f"{totals['attention_flops'] / 1e9:.1f}"}
    out.add(f"{totals['attention_flops'] / totals['flops'] * 100:.1f}")
    out |= {str(v) for v in (*t["input"]["image_size"], t["input"]["latent_factor"], t["input"]["context_tokens"])}
    out |= {str(c["in_channels"]), str(c["context_dim"]), str(c["model_channels"]), str(len(c["channel_mult"]))}
    side = t["input"]["sample_size"][0]
    for level, mult in enumerate(c["channel_mult"]):
        width = c["model_channels"] * mult
        out |= {str(width), str(side >> level), str((side >> level) ** 2)}
        if c["num_head_channels"]:
            out |= {str(c["num_head_channels"]), str(width // c["num_head_channels"])}
    if c["num_heads"]:
        out.add(str(c["num_heads"]))
    out |= {str(d) for d in c["transformer_depth"]} | {str(c["transformer_depth_middle"])}
    emb = nodes["time_embed"]["outputs"][0]["shape"][-1]
    out.add(str(emb))
    if c["adm_in_channels"]:
        # SDXL's y: the pooled text embedding (as wide as the time embedding) and six numbers as sinusoids.
        rest = c["adm_in_channels"] - emb
        out |= {str(c["adm_in_channels"]), str(rest), str(rest // 6), "6"}
        out.add(str(c["context_dim"] - 768))  # the second text encoder's width beside CLIP ViT-L's 768
    by_level_flops: dict[int, int] = {}
    by_level_attn: dict[int, int] = {}
    for b in t["blocks"]:
        n = nodes[b["path"]]
        out.add(f"{n['params'] / 1e6:.1f}")
        for shape in [*(i["shape"] for i in n["inputs"][:1]), n["outputs"][0]["shape"]]:
            out |= {str(v) for v in shape[1:2]}
        if n["level"] is not None:
            by_level_flops[n["level"]] = by_level_flops.get(n["level"], 0) + n["flops"]
            by_level_attn[n["level"]] = by_level_attn.get(n["level"], 0) + n["flops_by_op"].get("attention", 0)
    for level, flops in by_level_flops.items():
        out |= {f"{flops / 1e9:.1f}", f"{flops / totals['flops'] * 100:.0f}", f"{by_level_attn[level] / 1e9:.1f}"}
    # The layers' own figures: a 3×3 convolution, a stride of 2, one transformer block where the depth is 1.
    return out | {"3", "2", "1"}


def _pair_facts(a: dict, b: dict) -> set[str]:
    """Ratios between two models: parameters, FLOPs and positions."""
    ratio = lambda key: f"{b['totals'][key] / a['totals'][key]:.2f}"  # noqa: E731
    positions = (b["input"]["sample_size"][0] / a["input"]["sample_size"][0]) ** 2
    return {ratio("params"), ratio("flops"), f"{positions:g}"}


def _lesson(name: str) -> dict:
    return json.loads((LESSONS / name).read_text())


def _figures(lesson: dict) -> list[tuple[int, str]]:
    found = []
    for i, step in enumerate(lesson["steps"]):
        for key in ("text", "question", "answer"):
            text = NAMES.sub(" ", step.get(key, ""))
            found += [(i, m) for m in NUMBER.findall(text)]
    return found


@pytest.mark.parametrize(
    ("name", "models"),
    [
        ("sd-unet-in-20-minutes.json", [("sd1", 512)]),
        ("sd15-vs-sdxl.json", [("sd1", 512), ("sdxl-base", 1024)]),
        ("walk-the-tensor.json", [("sd1", 512)]),
    ],
)
def test_every_figure_in_a_lesson_is_the_traces(name: str, models: list[tuple[str, int]]) -> None:
    traces = [_trace(p, s) for p, s in models]
    facts = set().union(*map(_facts, traces))
    if len(traces) == 2:
        facts |= _pair_facts(*traces)
    figures = _figures(_lesson(name))
    assert len(figures) > 15  # the lessons are about figures: a scanner that finds none is broken
    wrong = [(i + 1, f) for i, f in figures if f not in facts]
    assert not wrong, f"{name}: figures no trace gives (step, figure): {wrong}"


def test_a_wrong_figure_is_caught() -> None:
    """The check can fail: SD 1.5 with a parameter count off by 0.1 M is refused."""
    facts = _facts(_trace("sd1", 512))
    lesson = {"steps": [{"text": "It has 859.4 M parameters and 803.3 GFLOPs."}]}
    assert [f for _, f in _figures(lesson) if f not in facts] == ["859.4"]


def test_the_shipped_lessons_are_listed() -> None:
    listed = json.loads((LESSONS / "index.json").read_text())
    assert sorted(listed) == sorted(p.name for p in LESSONS.glob("*.json") if p.name != "index.json")
