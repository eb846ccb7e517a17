"""What a teacher says from the page is true (issue 24): the Walk lesson's shapes, a Downsample's inputs, the
attention score matrix in the details, the cost of a guided sampling step, and one drawn edge per producer →
consumer pair inside attention, with every step named for what it does. Measured in Chromium against the trace
the server gives.

The page's CSP forbids eval, so every wait_for_function gets a function expression, never a bare string.
"""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.browser

RESULTS = Path(__file__).parent.parent / "test-results"
LESSONS = Path(__file__).parent.parent / "static" / "lessons"
ATTN = "input_blocks.1.1.transformer_blocks.0"


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """The projector of the issue."""
    return {**browser_context_args, "viewport": {"width": 1280, "height": 720}}


def _trace(live_server: str, preset: str = "sd1") -> dict:
    r = httpx.post(f"{live_server}/api/trace", json={"preset": preset}, timeout=120)
    r.raise_for_status()
    return r.json()


def _open(page, live_server: str, hash_: str) -> None:
    page.goto(f"{live_server}/#{hash_}")
    page.wait_for_function("() => document.body.dataset.ready === 'true'")


def _details(page):
    """The details dock, opened if a selection in the link has not opened it already."""
    toggle = page.locator("#details-toggle")
    if toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
    return page.get_by_role("region", name="Details")


def test_the_walk_says_what_the_shapes_are(page, live_server, console_errors) -> None:
    """The Walk button's lesson, as the page shows it: every shape it names (c×h×w) is a top-level block's input,
    output or skip in the trace, and the skip it spells out adds up as the trace's concatenation does."""
    trace = _trace(live_server)
    nodes = {n["path"]: n for n in trace["nodes"]}
    shown = lambda shape: "×".join(map(str, shape[1:]))  # noqa: E731
    shapes = set()
    for b in trace["blocks"]:
        node = nodes[b["path"]]
        shapes |= {shown(t["shape"]) for t in [*node["inputs"][:1], *node["outputs"]] if len(t["shape"]) == 4}
    for skip in trace["skips"]:
        shapes |= {shown(skip["shape"]), shown(skip["concat_shape"])}
    _open(page, live_server, "sd1")
    page.get_by_role("button", name="Walk the tensor").click()
    texts = []
    n = len(json.loads((LESSONS / "walk-the-tensor.json").read_text())["steps"])
    for i in range(n):
        page.wait_for_function("(i) => document.body.dataset.lessonShown === String(i)", arg=i)
        texts.append(page.locator("#lesson-text").inner_text())
        if i < n - 1:
            page.get_by_role("button", name="Next step").click()
    named = [m for t in texts for m in re.findall(r"\d+×\d+×\d+", t)]
    assert len(named) > 10
    assert [m for m in named if m not in shapes] == []
    # "t joins every block": the time embedding's width is its output's, not t's own shape ([1]).
    assert f"{nodes['time_embed']['outputs'][0]['shape'][-1]} numbers" in texts[1]
    # The first up block's skip: what runs up ⧺ what was saved = what the block reads.
    skip = next(s for s in trace["skips"] if s["to"] == "output_blocks.0")
    running = [*skip["concat_shape"]]
    running[1] -= skip["shape"][1]
    said = f"{shown(running)} ⧺ {shown(skip['shape'])} = {shown(skip['concat_shape'])}"
    assert any(said in t for t in texts), said
    assert console_errors == []


def test_a_downsample_lists_only_what_it_reads(page, live_server, console_errors) -> None:
    trace = _trace(live_server)
    nodes = {n["path"]: n for n in trace["nodes"]}
    # The forward hands every block (x, emb, context); a Downsample reads only x.
    assert len(nodes["input_blocks.3"]["inputs"]) == 3
    _open(page, live_server, "sd1&sel=input_blocks.3")
    details = _details(page)
    assert details.locator('[data-field="inputs"]').inner_text() == "[1, 320, 64, 64]"
    assert details.locator("dt", has_text="Input").first.inner_text() == "Input"
    # A block that reads all three names the extra two.
    _open(page, live_server, "sd1&sel=input_blocks.1")
    details = _details(page)
    assert details.locator('[data-field="inputs"]').inner_text() == (
        "[1, 320, 64, 64] · time emb [1, 1280] · context [1, 77, 768]"
    )
    # The ResBlock of an 8×8 up block reads the embedding, not the context.
    _open(page, live_server, "sd1&sel=output_blocks.0")
    details = _details(page)
    assert details.locator('[data-field="inputs"]').inner_text() == "[1, 2560, 8, 8] · time emb [1, 1280]"
    assert console_errors == []


def test_attention_details_show_the_score_matrix(page, live_server, console_errors) -> None:
    trace = _trace(live_server)
    nodes = {n["path"]: n for n in trace["nodes"]}
    opened = f"input_blocks.1,input_blocks.1.1,{ATTN}"
    _open(page, live_server, f"sd1&open={opened}&sel={ATTN}.attn1")
    details = _details(page)
    text = details.locator('[data-field="scores"]').inner_text()
    scores = nodes[f"{ATTN}.attn1"]["attention"]["scores"]
    assert scores["shape"] == [1, 8, 4096, 4096]
    assert text.startswith("8 × 4096 × 4096 (heads × queries × keys) = 134 M weights: ")
    assert "512 MiB in float32, 256 MiB in float16" in text
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "page-lecture-attn1-scores.png"))

    _open(page, live_server, f"sd1&open={opened}&sel={ATTN}.attn2")
    details = _details(page)
    text = details.locator('[data-field="scores"]').inner_text()
    assert text.startswith("8 × 4096 × 77 (heads × queries × keys) = 2.5 M weights: ")
    assert "9.63 MiB in float32, 4.81 MiB in float16" in text
    # The transformer block itself computes no scores of its own.
    _open(page, live_server, f"sd1&open={opened}&sel={ATTN}")
    assert _details(page).locator('[data-field="scores"]').count() == 0
    assert console_errors == []


def _compact(n: float) -> str:
    for v, s in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= v:
            return f"{n / v:.{0 if abs(n) / v >= 100 else 1}f} {s}"
    return str(n)


def test_the_summary_says_what_a_guided_step_costs(page, live_server, console_errors) -> None:
    trace = _trace(live_server)
    _open(page, live_server, "sd1")
    summary = page.locator("#summary")
    rows = dict(
        zip(
            summary.locator("dt").all_inner_texts(),
            summary.locator("dd").all_inner_texts(),
            strict=True,
        )
    )
    flops = trace["totals"]["flops"]
    assert rows["FLOPs per UNet forward"].startswith(f"{_compact(flops)} at 512×512 px")
    assert trace["pipeline"]["unet_calls_per_step"] == 2
    assert rows["Per sampling step"] == (
        f"{_compact(2 * flops)} FLOPs with classifier-free guidance: the UNet runs twice, with the prompt and "
        "without, and the two predictions are mixed"
    )
    page.locator("#summary").screenshot(path=str(RESULTS / "page-lecture-summary.png"))
    assert console_errors == []


def test_one_edge_per_pair_and_every_step_named_for_what_it_does(page, live_server, console_errors) -> None:
    up = "output_blocks.2.1"  # sd1's first Upsample: nearest-neighbour ×2, then a 3×3 conv
    opened = f"input_blocks.1,input_blocks.1.1,{ATTN},{ATTN}.attn1,{ATTN}.attn2,output_blocks.2,{up}"
    _open(page, live_server, f"sd1&open={opened}")
    for attn in (f"{ATTN}.attn1", f"{ATTN}.attn2"):
        pairs = page.eval_on_selector_all(
            f'#diagram g.box[data-path="{attn}"] path.wire[data-from][data-to]',
            "els => els.map(e => [e.dataset.from, e.dataset.to])",
        )
        counts = collections.Counter(map(tuple, pairs))
        assert [p for p, n in counts.items() if n > 1] == [], f"{attn}: drawn twice"
        # q, k and v each feed the attention once; the block's input reaches q.
        assert {(f"{attn}.to_{x}", f"{attn}:attend") for x in "qkv"} <= set(counts)
        assert (f"{attn}:in", f"{attn}.to_q") in counts
    ops = page.eval_on_selector_all(f'#diagram g.box[data-path="{up}"] [data-op]', "els => els.map(e => e.dataset.op)")
    assert f"{up}:nearest" in ops and not any(op.endswith(":attend") for op in ops)
    assert console_errors == []
