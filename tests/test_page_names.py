"""The page speaks the community's names: the "Names" switch relabels every card from POST /api/names,
the details list every name of the selected block, block weights typed in the field paint the U with the server's
reading of the spec (and a wrong-length vector shows the server's reason), and "Open LoRA" reads a LoRA file's
header (and alpha scalars) in the browser and paints the blocks it patches with their ranks.

The expected values come from the API (the one place that knows the names, the weights and the detection), asked
by the test itself; the LoRA files are real safetensors files built by tests/lora_factory.py from our UNet's layers.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import save_file

from sdunet_core import PRESETS, UNetModel
from tests.lora_factory import kohya_metadata, lora_tensors, write_lora

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parent.parent
RESULTS = ROOT / "test-results"
TOP = "svg.unet .layer-boxes > g.box"
ALPHA = 4.0
# Two parts of SD 1.x that a kohya LoRA trains at different ranks: IN04's attention and OUT05's attention.
IN04 = "input_blocks.4.1."
OUT05 = "output_blocks.5.1."


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """A desktop window: the tools row (names, block weights, the open dialogs) is open there."""
    return {**browser_context_args, "viewport": {"width": 1600, "height": 1000}}


def _ready(page, preset: str) -> None:
    page.wait_for_function(
        "(p) => document.body.dataset.ready === 'true' && document.body.dataset.preset === p"
        " && document.body.dataset.names === 'true'",
        arg=preset,
    )
    # The Names and Block weights fields live in the Tools row, folded on a short window: unfold it.
    if page.locator("#tools").is_hidden():
        page.click("#tools-toggle")


def _card(page, part: str) -> dict[str, str | None]:
    """Per top-level block, its card's `part`: the text of an element, or the inline fill of the background."""
    read = "e => e.style.fill" if part == "fill" else "e => e.textContent"
    selector = ".card-bg" if part == "fill" else part
    return page.eval_on_selector_all(
        TOP,
        f"els => Object.fromEntries(els.map(e => [e.dataset.path,"
        f" (({read})(e.querySelector(':scope > .card > {selector}') ?? {{style: {{}}}})) ?? null]))",
    )


def _titles(page) -> dict[str, str]:
    return _card(page, ".t1")


def _full_titles(page) -> dict[str, str]:
    """Each top-level card's title as a whole: a name shortened on the card keeps it in `data-full`."""
    return page.eval_on_selector_all(
        TOP,
        "els => Object.fromEntries(els.map(e => { const t = e.querySelector(':scope > .card > .t1');"
        " return [e.dataset.path, t.dataset.full ?? t.textContent]; }))",
    )


def _badges(page) -> dict[str, str | None]:
    """The number each top-level card shows at the right of its third line (a share, a weight, a rank)."""
    return _card(page, ".share")


def _fills(page) -> dict[str, str]:
    return _card(page, "fill")


def _names(url: str, preset: str) -> dict:
    r = httpx.post(f"{url}/api/names", json={"preset": preset}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _weights(url: str, preset: str, spec: str) -> httpx.Response:
    return httpx.post(f"{url}/api/names/block-weights", json={"preset": preset, "spec": spec}, timeout=60)


def _compact(n: int) -> str:
    """A count as the page writes it (format.js compact): 176128 → "176 k", 94208 → "94.2 k"."""
    for value, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= value:
            return f"{n / value:.{0 if n / value >= 100 else 1}f} {suffix}"
    return str(n)


def _weight_text(w: float) -> str:
    return f"×{float(f'{w:.3f}'):g}"


def test_names_switch_relabels_every_card_and_details_list_every_name(page, live_server, console_errors) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{live_server}/#sd1")
    _ready(page, "sd1")
    table = _names(live_server, "sd1")
    blocks = {b["path"]: b["labels"] for b in table["blocks"]}
    assert set(_titles(page).values()) == set(blocks), "the original scheme keeps the paths"

    # Block-weight IDs: every card reads its ID (the blocks no ID names say so), as the API has them.
    page.select_option("#names-scheme", "block_id")
    page.wait_for_function("() => location.hash.includes('names=block_id')")
    titles = _titles(page)
    assert titles == {p: lab["block_id"] or f"({p})" for p, lab in blocks.items()}
    assert (titles["input_blocks.4"], titles["middle_block"], titles["output_blocks.5"]) == ("IN04", "M00", "OUT05")
    subs = page.eval_on_selector_all(TOP, "els => els.map(e => e.querySelector(':scope > .card > .t2').textContent)")
    assert "input_blocks.4" in subs, "a relabelled card still says which block it is"

    # The setting is in the URL: a reload comes back to it.
    page.reload()
    _ready(page, "sd1")
    in04 = 'svg.unet g.box[data-path="input_blocks.4"] > .card > .t1'
    page.wait_for_function("(s) => document.querySelector(s)?.textContent === 'IN04'", arg=in04)
    assert page.input_value("#names-scheme") == "block_id"

    # diffusers: a block of two diffusers modules shows them with the shared part once; inside, each card shows
    # its own name below the enclosing one's (ResBlock's in_layers.2 is diffusers' conv1).
    page.select_option("#names-scheme", "diffusers")
    page.wait_for_function("() => location.hash.includes('names=diffusers')")
    titles = _full_titles(page)
    assert titles["input_blocks.0"] == blocks["input_blocks.0"]["diffusers"] == "conv_in"
    assert blocks["input_blocks.4"]["diffusers"] == "down_blocks.1.resnets.0, down_blocks.1.attentions.0"
    assert titles["input_blocks.4"] == "down_blocks.1.{resnets,attentions}.0"
    # Too long for the card the default names sized: shortened in the middle, whole in the tooltip.
    shown = _titles(page)["input_blocks.4"]
    assert (
        shown.startswith("down")
        and shown.endswith("}.0")
        and "…" in shown
        and len(shown) < len(titles["input_blocks.4"])
    )
    tip = page.locator(f'{TOP}[data-path="input_blocks.4"] > .card > title').text_content()
    assert tip.startswith("down_blocks.1.{resnets,attentions}.0, input_blocks.4")
    page.click(f'{TOP}[data-path="input_blocks.4"] > .card')
    page.click('svg.unet g.box[data-path="input_blocks.4.0"] > .card')
    in_layers = page.locator('svg.unet g.box[data-path="input_blocks.4.0.in_layers"] > .card')
    assert in_layers.locator(".t1").text_content() == "(in_layers)", "diffusers has no module for it"
    in_layers.click()
    conv1 = page.locator('svg.unet g.box[data-path="input_blocks.4.0.in_layers.2"] > .card > .t1')
    assert conv1.text_content() == "conv1"
    modules = {m["path"]: m["labels"] for m in table["modules"]}
    assert modules["input_blocks.4.0.in_layers.2"]["diffusers"] == "down_blocks.1.resnets.0.conv1"
    # Every top-level title fits inside its card.
    overflow = page.eval_on_selector_all(
        TOP,
        "els => els.filter(e => { const t = e.querySelector(':scope > .card > .t1').getBBox();"
        " const r = e.querySelector(':scope > .card > .card-bg').getBBox(); return t.x + t.width > r.width; })"
        ".map(e => e.dataset.path)",
    )
    assert overflow == []

    # The details list every name of the selected module (in_layers, clicked last), the shown scheme marked…
    details = page.get_by_role("region", name="Details")
    section = details.locator('[data-field="names"]')
    section.wait_for()
    mine = modules["input_blocks.4.0.in_layers"]
    assert mine["diffusers"] is None
    assert section.locator('[data-field="name-diffusers"]').inner_text() == "—"
    assert section.locator('[data-field="name-lora_original"]').inner_text() == mine["lora_original"]
    assert section.locator('[data-field="name-block_id"]').inner_text() == mine["block_id"] == "IN04"
    # …and of a block, selected by a link.
    page.goto(f"{live_server}/#sd1@512&sel=input_blocks.4&names=diffusers")
    _ready(page, "sd1")
    section.locator('[data-field="name-kohya"]').wait_for()
    expect = blocks["input_blocks.4"]
    assert section.locator('[data-field="name-block_id"]').inner_text() == expect["block_id"]
    assert section.locator('[data-field="name-lora_original"]').inner_text() == expect["lora_original"]
    assert section.locator('[data-field="name-kohya"]').inner_text() == expect["kohya"]
    assert section.locator('[data-field="name-diffusers"]').inner_text().split("\n") == expect["diffusers"].split(", ")
    assert "current" in (section.locator('[data-field="name-diffusers"]').get_attribute("class") or "")
    assert "17" in section.locator('[data-field="name-id-lists"]').inner_text()
    assert console_errors == []


def test_names_come_back_with_a_model_whose_trace_the_page_holds(page, live_server, console_errors) -> None:
    # Back to a model traced before, the page draws it at once from its own cache, before the names module hears
    # of the switch: it must still take that model's names (it waited for them for ever).
    page.goto(f"{live_server}/#sd1")
    _ready(page, "sd1")
    for preset in ("sd2", "sd1"):
        page.select_option("#model", preset)
        _ready(page, preset)
    page.click(f'{TOP}[data-path="input_blocks.4"] > .card')
    section = page.get_by_role("region", name="Details").locator('[data-field="names"]')
    section.locator('[data-field="name-block_id"]').wait_for(timeout=10_000)
    assert section.locator('[data-field="name-block_id"]').inner_text() == "IN04"
    page.select_option("#names-scheme", "block_id")  # and the cards take them
    page.wait_for_function(
        "(s) => document.querySelector(s)?.textContent === 'IN04'",
        arg=f'{TOP}[data-path="input_blocks.4"] > .card > .t1',
    )
    assert console_errors == []


def test_block_weights_paint_the_u_and_a_wrong_vector_shows_the_reason(page, live_server, console_errors) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{live_server}/#sd1")
    _ready(page, "sd1")
    field = page.locator("#block-weights")
    for spec in ("IN04-OUT05", "MIDD", "1,0,0,0,0,0.5,0,0,0,0,0,0,0,0,0,0,1"):
        r = _weights(live_server, "sd1", spec)
        assert r.status_code == 200, r.text
        expected = {b["path"]: _weight_text(b["weight"]) for b in r.json()["blocks"]}
        field.fill(spec)
        field.press("Enter")
        page.wait_for_function(
            "(s) => document.body.dataset.paint === 'weights' && location.hash.endsWith('bw=' + s)"
            " && document.getElementById('block-weights').dataset.state === 'done'",
            arg=spec,
        )
        assert page.input_value("#overlay") == "weights"
        assert _badges(page) == expected, spec
        fills = _fills(page)
        on = [p for p, w in expected.items() if w == "×1"]
        off = [p for p, w in expected.items() if w == "×0"]
        assert on and off and {fills[p] for p in on}.isdisjoint({fills[p] for p in off})
    assert page.locator('[data-field="bw-base"]').inner_text() == "BASE (text encoder) ×1"

    # The spec is in the URL: a reload shows the same weights.
    assert "bw=1,0,0,0,0,0.5" in page.evaluate("() => location.hash")
    page.reload()
    _ready(page, "sd1")
    page.wait_for_function("() => document.body.dataset.paint === 'weights'")
    assert _badges(page) == expected
    assert page.input_value("#block-weights") == "1,0,0,0,0,0.5,0,0,0,0,0,0,0,0,0,0,1"

    # A vector of the wrong length: the server's reason, naming the lengths this model takes, next to the field.
    for preset, spec in (("sd1", "1,0,1"), ("sdxl-base", ",".join(["1"] * 17))):
        r = _weights(live_server, preset, spec)
        assert r.status_code == 422 and r.json()["field"] == "spec"
        if preset != "sd1":
            page.select_option("#model", preset)
            _ready(page, preset)
        field.fill(spec)
        field.press("Enter")
        page.wait_for_function("() => document.getElementById('block-weights').dataset.state === 'error'")
        error = page.locator("#block-weights-error")
        assert error.is_visible()
        assert error.inner_text() == r.json()["reason"]
        assert re.search(r"accepts (\d+, )+\d+", error.inner_text())
        assert field.get_attribute("aria-invalid") == "true"
        assert not any((b or "").startswith("×") for b in _badges(page).values()), "nothing painted from a refused spec"
    assert page.locator("#block-weights-error").inner_text().endswith("accepts 12, 20"), "SDXL's lists: 12 and 20 IDs"
    # Chromium logs each 4xx response as "Failed to load resource"; nothing else may appear.
    assert [e for e in console_errors if "the server responded with a status of 4" not in e] == []


@pytest.fixture(scope="module")
def lora_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("lora")
    out = {"sd1": d / "kohya_sd1.safetensors", "sdxl": d / "kohya_sdxl.safetensors", "ckpt": d / "tiny.safetensors",
           "garbage": d / "garbage.safetensors"}  # fmt: skip
    # kohya's own spelling for SD 1.x (diffusers names), IN04's attention at rank 8, OUT05's at rank 16.
    tensors = lora_tensors("sd1", "lora", rank=8, select=lambda m: m.path.startswith(IN04))
    tensors |= lora_tensors("sd1", "lora", rank=16, select=lambda m: m.path.startswith(OUT05), text_encoder=False)
    write_lora(out["sd1"], tensors, ALPHA, kohya_metadata("sd1", rank=8, alpha=ALPHA))
    xl = lora_tensors("sdxl-base", "lora", rank=4, select=lambda m: m.path.startswith("input_blocks.4.1."))
    write_lora(out["sdxl"], xl, 2.0, kohya_metadata("sdxl", rank=4, alpha=2.0))
    torch.manual_seed(0)
    state = UNetModel(PRESETS["tiny"].config).state_dict()
    save_file({f"model.diffusion_model.{k}": v.contiguous() for k, v in state.items()}, str(out["ckpt"]))
    junk = b"\x00 no header here \xff" * 3
    out["garbage"].write_bytes(struct.pack("<Q", len(junk)) + junk)
    return out


def _detect(url: str, path: Path, **query: str) -> httpx.Response:
    """The API's answer for a file's header, sent as the page sends it: UTF-8 text as its TextDecoder makes it
    (without the alphas, which the page adds when the header parses)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    text = raw[8 : 8 + n].decode("utf-8", errors="replace")
    return httpx.post(f"{url}/api/lora/detect", params=query, content=text.encode(),
                      headers={"content-type": "application/json"}, timeout=120)  # fmt: skip


def _open_lora(page, path: Path) -> None:
    page.locator("#lora-file").set_input_files(str(path))
    page.wait_for_function(
        "() => { const p = document.getElementById('lora');"
        " return p.dataset.state === 'error' || (p.dataset.state === 'done' && p.dataset.flops === 'done'); }",
        timeout=120_000,
    )


def test_a_kohya_sd1_lora_lands_on_its_blocks_with_its_ranks(page, live_server, console_errors, lora_files) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{live_server}/#sd1")
    _ready(page, "sd1")
    api = _detect(live_server, lora_files["sd1"], preset="sd1", image_size="512")
    assert api.status_code == 200, api.text
    det = api.json()
    _open_lora(page, lora_files["sd1"])
    panel = page.get_by_role("region", name="LoRA")
    assert panel.get_attribute("data-state") == "done"
    page.wait_for_function("() => document.body.dataset.lora === 'on' && document.body.dataset.paint === 'lora-rank'")
    assert page.input_value("#overlay") == "lora-rank"

    # The two blocks it patches, each with its rank; every other card unpainted and without a number.
    badges = _badges(page)
    assert badges["input_blocks.4"] == "r8" and badges["output_blocks.5"] == "r16"
    assert {p for p, b in badges.items() if b} == {"input_blocks.4", "output_blocks.5"}
    fills = _fills(page)
    assert fills["input_blocks.4"] and fills["output_blocks.5"] and fills["input_blocks.4"] != fills["output_blocks.5"]
    assert {p for p, f in fills.items() if f} == {"input_blocks.4", "output_blocks.5"}

    # The panel: one headline; unfolded, format, family, the IDs, params and FLOPs as the API counts them at 512 px.
    headline = panel.locator('[data-field="headline"]')
    assert headline.inner_text().startswith("lora · SD 1.x · r8–16")
    headline.click()

    def field(name: str) -> str:
        return panel.locator(f'[data-field="{name}"]').first.inner_text()

    assert det["format"] == "lora" and det["family"] == "sd1" and det["block_ids"] == ["BASE", "IN04", "OUT05"]
    assert field("format").startswith("lora")
    assert field("family").startswith("SD 1.x")
    assert field("block-ids").startswith("BASE,IN04,OUT05")
    assert f"{det['params_added']:,}" in field("params-added")
    assert f"{_compact(det['flops_added'])} FLOPs per step at 512×512 px" in field("flops-added")
    rows = panel.locator("table.lora-blocks tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.id)") == ["IN04", "OUT05"]
    assert "lora_te" in field("text-encoder") and "(0)" in field("unmatched")
    legend = page.locator('[data-field="lora-totals"]')
    assert legend.is_visible() and "SD 1.x" in legend.inner_text() and "512×512 px" in legend.inner_text()
    # The alphas were read from the file: the scale is alpha / rank per module.
    assert "read from the file" in field("alpha")

    # Inside IN04: the patched projections carry their rank; the details give rank, alpha and scale.
    page.click(f'{TOP}[data-path="input_blocks.4"] > .card')
    page.click('svg.unet g.box[data-path="input_blocks.4.1"] > .card')
    page.click('svg.unet g.box[data-path="input_blocks.4.1.transformer_blocks.0"] > .card')
    page.click('svg.unet g.box[data-path="input_blocks.4.1.transformer_blocks.0.attn1"] > .card')
    to_q = "input_blocks.4.1.transformer_blocks.0.attn1.to_q"
    page.locator(f'svg.unet g.box[data-path="{to_q}"] > .card').click()
    assert page.locator(f'svg.unet g.box[data-path="{to_q}"] > .card > .share').text_content() == "r8"
    module = next(m for m in det["modules"] if m["path"] == to_q)
    lora_section = page.get_by_role("region", name="Details").locator('[data-field="lora"]')
    lora_section.wait_for()
    assert lora_section.locator('[data-field="lora-key"]').inner_text() == module["lora_key"]
    assert lora_section.locator('[data-field="lora-rank"]').inner_text() == "8"
    assert lora_section.locator('[data-field="lora-alpha"]').inner_text() == f"{ALPHA:g} (tensor)"
    assert lora_section.locator('[data-field="lora-scale"]').inner_text() == "0.5"

    # Colour by parameters: the numbers are the API's parameters per block.
    page.select_option("#overlay", "lora-params")
    page.wait_for_function("() => document.body.dataset.paint === 'lora-params'")
    per_block = {b["path"]: b["params"] for b in det["unet_blocks"] if b["modules"]}
    badges = _badges(page)
    for path, params in per_block.items():
        assert badges[path] == f"+{_compact(params)}"

    RESULTS.mkdir(exist_ok=True)
    page.select_option("#overlay", "lora-rank")
    page.click(f'{TOP}[data-path="input_blocks.4"] > .card')  # closed again: the whole U in view
    page.wait_for_function("() => document.body.dataset.paint === 'lora-rank'")
    headline.click()  # folded again: the headline, the legend and the U in view
    page.evaluate("() => document.getElementById('lora').scrollIntoView()")
    page.screenshot(path=str(RESULTS / "page-lora-sd1.png"))

    # Closing the LoRA takes its colours off.
    panel.get_by_role("button", name="Close the LoRA").click()
    page.wait_for_function("() => document.body.dataset.lora === 'none' && document.body.dataset.paint === 'none'")
    assert not any(_fills(page).values())
    assert console_errors == []


def test_a_lora_of_another_family_offers_to_switch_and_foreign_files_show_why(
    page, live_server, console_errors, lora_files
) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{live_server}/#sd1")
    _ready(page, "sd1")
    panel = page.get_by_role("region", name="LoRA")

    # A checkpoint and garbage are not LoRAs: the panel shows the server's reason, the U stays as it was.
    for name, status in (("ckpt", 422), ("garbage", 400)):
        r = _detect(live_server, lora_files[name], flops="false")
        assert r.status_code == status, r.text
        _open_lora(page, lora_files[name])
        assert panel.get_attribute("data-state") == "error"
        assert r.json()["reason"] in panel.locator('[data-field="error"]').inner_text()
        assert page.evaluate("() => document.body.dataset.lora") == "none"

    # An SDXL LoRA dropped on SD 1.x's diagram: said so, nothing painted, and a button to show its model.
    data = list(lora_files["sdxl"].read_bytes())
    transfer = page.evaluate_handle(
        "(b) => { const t = new DataTransfer();"
        " t.items.add(new File([new Uint8Array(b)], 'kohya_sdxl.safetensors')); return t; }",
        data,
    )
    page.dispatch_event(".diagram-panel", "drop", {"dataTransfer": transfer})
    page.wait_for_function(
        "() => document.getElementById('lora').dataset.flops === 'done'"
        " && document.querySelector('#lora .ckpt-file').textContent === 'kohya_sdxl.safetensors'",
        timeout=120_000,
    )
    mismatch = panel.locator('[data-field="mismatch"]')
    assert "SDXL" in mismatch.inner_text()
    assert page.evaluate("() => document.body.dataset.lora") == "other-family"
    assert not any(_fills(page).values())
    mismatch.get_by_role("button", name="Show sdxl-base").click()
    page.wait_for_function(
        "() => document.body.dataset.preset === 'sdxl-base' && document.body.dataset.lora === 'on'"
        " && document.getElementById('lora').dataset.flops === 'done' && document.body.dataset.paint === 'lora-rank'",
        timeout=120_000,
    )
    assert mismatch.count() == 0
    assert {p for p, b in _badges(page).items() if b} == {"input_blocks.4"}
    assert _badges(page)["input_blocks.4"] == "r4"
    det = json.loads(_detect(live_server, lora_files["sdxl"], flops="false").text)
    assert det["family"] == "sdxl" and det["block_ids"] == ["BASE", "IN04"]
    assert [e for e in console_errors if "the server responded with a status of 4" not in e] == []
