"""The page beyond the single diagram, in a real Chromium against a real server: compare mode against
/api/compare, the scaling chart against /api/scaling, "Colour by" overlays, search, the five exports (each file
checked against the trace or the CLI's summary) and the view restored from the URL.

The page's CSP forbids eval, so every wait_for_function gets a function expression, never a bare string.
"""

from __future__ import annotations

import csv
import json
import struct
from xml.etree import ElementTree

import httpx
import pytest

from sdunet_core.schema import Trace
from sdunet_core.tracer.summary import format_summary

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """A desktop window: the tools row is open there (test_page_fit.py checks the laptop and projector sizes)."""
    return {**browser_context_args, "viewport": {"width": 1600, "height": 1000}}


SVG_NS = "{http://www.w3.org/2000/svg}"
# The colour of a top-level block that has the most of the overlay's quantity (config.OVERLAY_RAMP's last stop).
DARKEST = "rgb(158, 31, 58)"


def _trace(live_server: str, preset: str, **body) -> dict:
    r = httpx.post(f"{live_server}/api/trace", json={"preset": preset, **body}, timeout=120)
    r.raise_for_status()
    return r.json()


def _get(live_server: str, path: str, **params) -> dict:
    r = httpx.get(f"{live_server}{path}", params=params, timeout=300)
    r.raise_for_status()
    return r.json()


def _wait_ready(page, preset: str | None = None) -> None:
    page.wait_for_function(
        "(p) => document.body.dataset.ready === 'true' && (p === null || document.body.dataset.preset === p)",
        arg=preset,
    )


def _open(page, live_server: str, hash_: str = "sd1") -> None:
    page.goto(f"{live_server}/#{hash_}")
    _wait_ready(page, hash_.split("@")[0].split("&")[0])


def _card(page, path: str):
    return page.locator(f'#diagram [data-path="{path}"] > .card')


def _box(page, path: str):
    return page.locator(f'#diagram g.box[data-path="{path}"]')


def _fill(page, path: str) -> str:
    return page.evaluate(
        '(p) => getComputedStyle(document.querySelector(`#diagram g.box[data-path="${p}"] > .card > .card-bg`)).fill',
        path,
    )


def test_compare_draws_both_models_level_by_level_with_the_api_numbers(page, live_server, console_errors) -> None:
    cmp = _get(live_server, "/api/compare", a="sd1", b="sdxl-base")
    blocks = {p: [b["path"] for b in _trace(live_server, p)["blocks"]] for p in ("sd1", "sdxl-base")}
    _open(page, live_server)
    section = page.get_by_role("region", name="Compare")
    assert section.is_hidden()
    page.get_by_label("Compare with").select_option("sdxl-base")
    page.wait_for_function("() => document.body.dataset.compare === 'true'")
    assert section.is_visible()
    page.wait_for_function("() => location.hash.includes('vs=sdxl-base')")

    # Both U's, every top-level block of each.
    for side, preset in (("a", "sd1"), ("b", "sdxl-base")):
        tops = section.locator(f'[data-side="{side}"] svg.unet .layer-boxes > g.box')
        assert tops.evaluate_all("els => els.map(e => e.dataset.path)") == blocks[preset], preset
        assert preset in section.locator(f'[data-side="{side}"] .compare-title').inner_text()

    # Lined up by resolution: sd1 at 512 px works at 64×64 in level 0, SDXL at 1024 px in level 1; 32×32 is sd1's
    # level 1 and SDXL's level 2; the middle blocks side by side at the bottom although sd1 has four levels and
    # SDXL three.
    # Measured from the top of each U's drawing: side by side or (where that is too small to read: compare.js) one
    # above the other, a level stands at the same height in both.
    def top_y(side: str, path: str) -> float:
        card = section.locator(f'[data-side="{side}"] g.box[data-path="{path}"] > .card').bounding_box()["y"]
        return card - section.locator(f'[data-side="{side}"] svg.unet').bounding_box()["y"]

    assert abs(top_y("a", "input_blocks.1") - top_y("b", "input_blocks.4")) < 1
    assert abs(top_y("a", "input_blocks.4") - top_y("b", "input_blocks.7")) < 1
    assert top_y("b", "input_blocks.1") < top_y("a", "input_blocks.1") - 20  # 128×128: only SDXL has it
    assert abs(top_y("a", "middle_block") - top_y("b", "middle_block")) < 1
    # One zoom for both.
    zooms = section.locator("svg.unet").evaluate_all(
        "els => els.map(e => e.getAttribute('width') / e.viewBox.baseVal.width)"
    )
    assert abs(zooms[0] - zooms[1]) < 1e-3

    # Every number of the tables is the API's.
    cells = page.evaluate(
        """() => [...document.querySelectorAll('#compare td[data-field]')].map((td) =>
          [td.closest('table').dataset.table, td.parentElement.dataset.key, td.dataset.field, td.dataset.value])"""
    )
    shown = {(t, k, f): v for t, k, f, v in cells}
    for table, rows, fields in (
        ("stage", cmp["by_stage"], ("params", "flops", "attention_flops")),
        ("level", cmp["by_level"], ("params", "flops", "attention_flops")),
        ("kind", cmp["by_kind"], ("count", "params", "flops")),
    ):
        for row in rows:
            for side in ("a", "b"):
                for field in fields:
                    want = "" if row[side] is None else str(row[side][field])
                    assert shown[(table, row["key"], f"{side}-{field}")] == want, (table, row["key"], side, field)

    # The structural differences, in words and one row per level that differs.
    words = section.locator(".compare-differences").inner_text()
    assert "sdxl-base drops attention at the highest resolution" in words
    assert "sdxl-base stacks 10 transformer blocks in each SpatialTransformer at the lowest resolution" in words
    assert "sd1 has 4 resolution levels and sdxl-base 3" in words
    wheres = section.locator(".diff-words tbody tr").evaluate_all("els => els.map(e => e.dataset.where)")
    assert wheres == [d["where"] for d in cmp["differences"]]

    # Opening a block on one side opens its counterpart on the other: the same stage, latent size and place in
    # its row (sd1's input_blocks.4, the first block at 32×32 on the way down, is SDXL's input_blocks.7).
    section.locator('[data-side="a"] g.box[data-path="input_blocks.4"] > .card').click()
    for side, path in (("a", "input_blocks.4"), ("b", "input_blocks.7")):
        assert (
            section.locator(f'[data-side="{side}"] g.box[data-path="{path}"]').get_attribute("data-expanded") == "true"
        )
    assert (
        section.locator('[data-side="b"] g.box[data-path="input_blocks.4"]').get_attribute("data-expanded") == "false"
    )

    page.get_by_label("Compare with").select_option("")
    assert section.is_hidden()
    page.wait_for_function("() => !location.hash.includes('vs=')")
    assert console_errors == []


def test_scaling_chart_has_the_api_points(page, live_server, console_errors) -> None:
    sizes = [256, 384, 512, 768, 1024, 1280, 1536, 2048]  # sd1 needs multiples of 64 (latent factor 8, 3 downsamplings)
    data = _get(live_server, "/api/scaling", preset="sd1", sizes=",".join(map(str, sizes)))
    _open(page, live_server)
    # Traced only when scrolled to.
    assert page.evaluate("() => document.body.dataset.scaling") is None
    page.locator("#scaling").scroll_into_view_if_needed()
    page.wait_for_function("() => document.body.dataset.scaling === 'true'", timeout=120_000)
    traces = page.evaluate(
        "() => document.getElementById('chart-scaling').data.map((t) => ({meta: t.meta, x: t.x, raw: t.customdata}))"
    )
    by = {t["meta"]: t for t in traces}
    assert set(by) == {
        "attention_flops", "other_flops", "peak_memory_bytes", "peak_activation_bytes", "peak_activation_bytes_fused",
        "activation_bytes",
    }  # fmt: skip
    for key, trace in by.items():
        assert trace["x"] == sizes, key
        assert trace["raw"] == [p[key] for p in data["points"]], key
    # Attention grows with the square of the latent pixels: 8× the side, 64× the pixels, ~4096× the attention FLOPs.
    first, last = data["points"][0], data["points"][-1]
    assert last["attention_flops"] / first["attention_flops"] > 1000 > last["other_flops"] / first["other_flops"]
    note = page.locator("#scaling-note").inner_text()
    assert "quadratic" in note and "256" in note and "2048" in note
    # Two peaks of activation memory, and why they differ.
    assert "math attention" in note and "fused kernel" in note
    assert data["points"][-1]["peak_activation_bytes_fused"] < data["points"][-1]["peak_activation_bytes"]
    axes = page.evaluate(
        "() => { const l = document.getElementById('chart-scaling').layout;"
        " return [l.yaxis.title.text, l.yaxis2.title.text, l.yaxis3 ? l.yaxis3.title.text : null]; }"
    )
    assert axes == ["TFLOPs per step", "memory (GiB)", None]  # one quantity per axis; no time before a profile
    assert console_errors == []


def test_colour_by_fills_blocks_and_shows_a_legend(page, live_server, console_errors) -> None:
    trace = _trace(live_server, "sd1")
    nodes = {n["path"]: n for n in trace["nodes"]}
    tops = [b["path"] for b in trace["blocks"]]
    _open(page, live_server)
    select = page.get_by_label("Colour by")
    assert select.input_value() == "none"
    legend = page.locator("#overlay-legend")
    assert legend.is_hidden()
    assert select.locator('option[value="time"]').is_disabled()  # no measured times before a profile
    before = {p: _fill(page, p) for p in tops}

    select.select_option("flops")
    _wait_ready(page)
    assert legend.is_visible() and "FLOPs" in legend.inner_text()
    flops = {p: _fill(page, p) for p in tops}
    biggest = max(tops, key=lambda p: nodes[p]["flops"])
    assert flops[biggest] == DARKEST
    assert len(set(flops.values())) > 5  # a scale, not one colour
    assert flops != before

    select.select_option("params")
    _wait_ready(page)
    params = {p: _fill(page, p) for p in tops}
    assert params[max(tops, key=lambda p: nodes[p]["params"])] == DARKEST
    assert params != flops

    # Inside an opened block the cards are coloured on the same scale.
    _card(page, "middle_block").click()
    _wait_ready(page)
    assert _fill(page, "middle_block.1") != _fill(page, "middle_block.0")

    # Activation memory sums every leaf output: the root's is the trace's total.
    total = page.evaluate(
        """async (trace) => {
          const L = await import('/static/js/layout.js');
          const ix = L.indexTrace(trace);
          return L.overlayValue(ix, ix.nodes.get(''), 'activation');
        }""",
        trace,
    )
    assert total == trace["totals"]["activation_bytes"]
    select.select_option("activation")
    _wait_ready(page)
    assert "activation memory" in legend.inner_text()

    select.select_option("none")
    _card(page, "middle_block").click()  # closed again, as in `before`
    _wait_ready(page)
    assert legend.is_hidden()
    assert {p: _fill(page, p) for p in tops} == before
    assert console_errors == []


def test_search_finds_opens_and_highlights_modules(page, live_server, console_errors) -> None:
    trace = _trace(live_server, "sd1")
    attn2 = [n["path"] for n in trace["nodes"] if n["name"] == "attn2"]
    assert len(attn2) == 16
    _open(page, live_server)
    box = page.get_by_label("Search")
    count = page.locator("#search-count")
    details = page.get_by_role("region", name="Details")
    _card(page, "input_blocks.2").click()  # the reader's own opening: every search leaves it open
    _wait_ready(page)
    assert _box(page, "input_blocks.2").get_attribute("data-expanded") == "true"

    box.fill("attn2")
    box.press("Enter")
    page.wait_for_function("() => document.getElementById('search-count').dataset.hits === '16'")
    _wait_ready(page)
    assert count.inner_text() == "1 / 16"
    # Every hit is drawn (the blocks around it opened) and marked.
    marked = page.eval_on_selector_all('#diagram [data-highlight="true"]', "els => els.map(e => e.dataset.path)")
    assert sorted(marked) == sorted(attn2)
    assert _box(page, "input_blocks.1.1.transformer_blocks.0").get_attribute("data-expanded") == "true"
    # The current hit is selected and scrolled into view.
    assert details.locator("h2").inner_text() == attn2[0]
    assert "selected" in _box(page, attn2[0]).get_attribute("class")
    host = page.locator("#diagram").bounding_box()
    card = _card(page, attn2[0]).bounding_box()
    assert host["y"] <= card["y"] <= host["y"] + host["height"]

    page.get_by_role("button", name="Next hit").click()
    assert count.inner_text() == "2 / 16"
    assert details.locator("h2").inner_text() == attn2[1]
    box.press("Enter")  # Enter steps on as well
    assert count.inner_text() == "3 / 16"
    page.get_by_role("button", name="Previous hit").click()
    page.get_by_role("button", name="Previous hit").click()
    page.get_by_role("button", name="Previous hit").click()
    assert count.inner_text() == "16 / 16"  # wraps around
    assert details.locator("h2").inner_text() == attn2[-1]

    # By kind, and by shape written either way.
    box.fill("CrossAttention")
    box.press("Enter")
    page.wait_for_function("() => document.getElementById('search-count').dataset.hits === '32'")
    expected = {
        n["path"]
        for n in trace["nodes"]
        if n["path"] not in ("", "input_blocks", "output_blocks")
        and any(o["shape"][1:] == [1280, 8, 8] for o in n["outputs"] or [])
    }
    for query in ("1280x8x8", "1280×8×8"):
        box.fill(query)
        box.press("Enter")
        page.wait_for_function(
            "(n) => document.getElementById('search-count').dataset.hits === String(n)", arg=len(expected)
        )
        _wait_ready(page)
        marked = page.eval_on_selector_all('#diagram [data-highlight="true"]', "els => els.map(e => e.dataset.path)")
        assert set(marked) <= expected and len(marked) > 0

    box.press("Escape")
    assert count.inner_text() == ""
    assert page.locator('#diagram [data-highlight="true"]').count() == 0
    # What the searches opened to reach their hits is closed again; what the reader opened stays.
    _wait_ready(page)
    assert _box(page, "input_blocks.1").get_attribute("data-expanded") == "false"
    assert _box(page, "output_blocks.5").get_attribute("data-expanded") == "false"
    assert _box(page, "input_blocks.2").get_attribute("data-expanded") == "true"
    assert console_errors == []


def test_exports_download_svg_png_json_csv_and_summary(page, live_server, console_errors, tmp_path) -> None:
    trace = _trace(live_server, "sd1")
    _open(page, live_server)
    _card(page, "input_blocks.1").click()
    _wait_ready(page)
    files = {}
    for kind in ("svg", "png", "json", "csv", "summary"):
        with page.expect_download() as info:
            page.locator(f'[data-export="{kind}"]').click()
        download = info.value
        files[kind] = tmp_path / download.suggested_filename
        download.save_as(files[kind])
    assert files["svg"].name == "sd1-512.svg"

    # SVG: a standalone document with every drawn module, styles written in.
    root = ElementTree.parse(files["svg"]).getroot()
    assert root.tag == f"{SVG_NS}svg"
    paths = {e.get("data-path") for e in root.iter() if e.get("data-path") is not None}
    assert {b["path"] for b in trace["blocks"]} | {"input_blocks.1.0", "input_blocks.1.1"} <= paths
    styles = [e.get("style", "") for e in root.iter(f"{SVG_NS}rect") if "card-bg" in (e.get("class") or "")]
    assert styles and all("fill:" in s for s in styles)
    width, height = int(float(root.get("width"))), int(float(root.get("height")))

    # PNG: a real image, at least the diagram's size.
    png = files["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) >= (width, height)

    # JSON: the trace itself.
    assert json.loads(files["json"].read_text()) == trace

    # CSV: a header and one row per module.
    with files["csv"].open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        "path", "kind", "category", "output_shape", "params", "flops", "attention_flops", "activation_bytes", "time_ms",
    ]  # fmt: skip
    assert [r[0] for r in rows[1:]] == [n["path"] for n in trace["nodes"]]
    attn = next(n for n in trace["nodes"] if n["name"] == "attn2")
    row = next(r for r in rows if r[0] == attn["path"])
    assert row[1:] == [
        "CrossAttention",
        "cross_attention",
        "x".join(map(str, attn["outputs"][0]["shape"])),
        str(attn["params"]),
        str(attn["flops"]),
        str(attn["flops_by_op"]["attention"]),
        str(attn["activation_bytes"]),
        "",
    ]

    # Summary: what `sdunet-explorer summary` prints for the same trace.
    assert files["summary"].read_text() == format_summary(Trace.model_validate(trace), depth=2) + "\n"
    assert console_errors == []


def test_the_url_restores_the_view(page, live_server, console_errors) -> None:
    _open(page, live_server)
    size = page.get_by_label("Image size (px)")
    size.fill("768")
    size.blur()  # the native change event (a dispatched one would be followed by a second on the next click)
    page.wait_for_function("() => document.body.dataset.ready === 'true' && location.hash.startsWith('#sd1@768')")
    for path in ("input_blocks.4", "input_blocks.4.1"):
        _card(page, path).click()  # opens and selects
        _wait_ready(page)
    page.get_by_label("Colour by").select_option("attention")
    page.get_by_label("Compare with").select_option("sd2")
    page.wait_for_function("() => document.body.dataset.compare === 'true'")
    page.wait_for_function(
        "() => ['open=input_blocks.4,input_blocks.4.1', 'sel=input_blocks.4.1', 'color=attention', 'vs=sd2']"
        ".every((s) => location.hash.includes(s))"
    )
    link = page.url

    def check(p) -> None:
        p.wait_for_function("() => document.body.dataset.ready === 'true' && document.body.dataset.compare === 'true'")
        assert p.get_by_label("Image size (px)").input_value() == "768"
        assert p.locator('#diagram g.box[data-path="input_blocks.4"]').get_attribute("data-expanded") == "true"
        assert p.locator('#diagram g.box[data-path="input_blocks.4.1"]').get_attribute("data-expanded") == "true"
        assert p.locator('#diagram g.box[data-path="input_blocks.1"]').get_attribute("data-expanded") == "false"
        assert "selected" in p.locator('#diagram g.box[data-path="input_blocks.4.1"]').get_attribute("class")
        assert p.get_by_role("region", name="Details").locator("h2").inner_text() == "input_blocks.4.1"
        assert p.locator('#diagram [data-path="input_blocks.4.1.proj_in"] > .card').count() == 1
        assert p.get_by_label("Colour by").input_value() == "attention"
        assert p.locator("#overlay-legend").is_visible()
        assert p.get_by_label("Compare with").input_value() == "sd2"
        assert p.get_by_role("region", name="Compare").is_visible()

    page.reload()
    check(page)
    # A pasted link in a new tab.
    other = page.context.new_page()
    other.goto(link)
    check(other)
    other.close()
    # A link pasted into the same tab changes only the hash: the page follows it.
    page.evaluate("() => { location.hash = '#sd1@512&open=middle_block'; }")
    page.wait_for_function(
        "() => document.body.dataset.ready === 'true' && document.getElementById('image-size').value === '512'"
    )
    assert page.evaluate("() => location.hash") == "#sd1@512&open=middle_block"
    assert _box(page, "middle_block").get_attribute("data-expanded") == "true"
    assert _box(page, "input_blocks.4").get_attribute("data-expanded") == "false"
    assert page.get_by_label("Colour by").input_value() == "none"
    assert page.get_by_role("region", name="Compare").is_hidden()
    assert console_errors == []


def test_profiled_times_colour_blocks_and_join_the_scaling_chart(page, live_server, console_errors) -> None:
    _open(page, live_server, "tiny")
    page.get_by_role("button", name="Profile").click()
    page.wait_for_function("() => document.querySelector('input[name=metric][value=time]').checked", timeout=120_000)
    _wait_ready(page)
    select = page.get_by_label("Colour by")
    assert select.locator('option[value="time"]').is_enabled()
    select.select_option("time")
    _wait_ready(page)
    assert "measured time" in page.locator("#overlay-legend").inner_text()
    assert (
        page.evaluate("() => [...document.querySelectorAll('#diagram g.box.top > .card.overlaid')].length")
        == page.locator("#diagram svg.unet .layer-boxes > g.box").count()
    )

    # The size on screen (tiny: 128 px) joins the scaling sizes, with its measured time.
    page.locator("#scaling").scroll_into_view_if_needed()
    page.wait_for_function("() => document.body.dataset.scaling === 'true'", timeout=120_000)
    time_trace = page.evaluate(
        "() => document.getElementById('chart-scaling').data.filter((t) => t.meta === 'time_ms').map((t) => [t.x, t.y])"
    )
    assert len(time_trace) == 1
    xs, ys = time_trace[0]
    assert 128 in xs and xs == sorted(xs)
    measured = page.evaluate("() => document.getElementById('chart-scaling').data[0].x.length")
    assert measured == len(xs)
    assert ys[xs.index(128)] > 0
    assert [y for x, y in zip(xs, ys, strict=True) if x != 128] == [None] * (len(xs) - 1)
    assert console_errors == []
