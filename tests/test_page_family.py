"""The model family on the page: a ControlNet drawn beside the U with its injections on the right skips
and its control scales sent to the API and shown; a ControlNet file opened through "Open checkpoint"; a pasted
diffusers config.json drawn, a bad one answered with the server's reason; a distilled variant compared with its
parent, its removed blocks drawn as removed and the savings per stage from the API.

Every expectation is read from the API (/api/trace, /api/compare) in the same test, never written in by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.test_diffusers_config import NO_MIDDLE

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parent.parent
RESULTS = ROOT / "test-results"
DATA = Path(__file__).parent / "data"
TOP = "#diagram svg.unet .layer-boxes > g.box"


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """A desktop window: the tools row (names, block weights, the open dialogs) is open there."""
    return {**browser_context_args, "viewport": {"width": 1600, "height": 1000}}


def _show_tools(page) -> None:
    """Unfold the Tools row, where the open dialogs live (the top bar keeps the room for the U)."""
    if page.locator("#tools").is_hidden():
        page.click("#tools-toggle")


def open_model(page, live_server: str, name: str) -> None:
    page.goto(f"{live_server}/#{name}")
    page.wait_for_selector("body[data-ready='true']", timeout=120_000)


def wait_control(page) -> None:
    page.wait_for_selector("body[data-control='ready']", timeout=120_000)


def test_controlnet_injections_land_on_the_skips_they_feed(page, live_server: str, console_errors: list[str]) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    open_model(page, live_server, "controlnet-tiny")
    wait_control(page)
    api = httpx.post(f"{live_server}/api/trace", json={"preset": "controlnet-tiny"}, timeout=120).json()
    unet = httpx.post(f"{live_server}/api/trace", json={"preset": api["control"]["base_preset"]}, timeout=120).json()
    injections = api["control"]["injections"]
    # The main U is the UNet the ControlNet steers.
    assert page.evaluate(f"document.querySelectorAll({TOP!r}).length") == len(unet["blocks"])
    drawn = page.eval_on_selector_all(
        "path.cn-injection",
        "els => els.map(e => ({from: e.dataset.from, to: e.dataset.to, consumer: e.dataset.consumer, "
        "shape: e.dataset.shape, params: Number(e.dataset.params), flops: Number(e.dataset.flops)}))",
    )
    assert [(d["from"], d["to"], d["consumer"]) for d in drawn] == [
        (i["source"], i["target"], i["consumer"]) for i in injections
    ]
    assert [(d["params"], d["flops"]) for d in drawn] == [(i["params"], i["flops"]) for i in injections]
    # Each skip injection's target is the input block whose skip its consumer concatenates, in the UNet's own skips.
    skips = {s["from"]: s for s in unet["skips"]}
    for inj in injections:
        if inj["added_to"] == "skip":
            assert skips[inj["target"]]["to"] == inj["consumer"]
            assert skips[inj["target"]]["shape"] == inj["shape"]
    # Marked on the U: beside the skip it is added to, and on the middle block.
    marks = page.eval_on_selector_all(
        "#diagram .cn-on-u",
        "els => els.map(e => [e.closest('[data-skip-from], g.box').dataset.skipFrom "
        "?? e.closest('g.box').dataset.path, e.dataset.to])",
    )
    assert sorted(marks) == sorted([i["target"], i["target"]] for i in injections)
    RESULTS.mkdir(exist_ok=True)
    page.locator("#controlnet").scroll_into_view_if_needed()
    page.screenshot(path=str(RESULTS / "controlnet-1280x720.png"))
    assert console_errors == []


def test_a_control_scale_goes_to_the_api_and_comes_back_drawn(
    page, live_server: str, console_errors: list[str]
) -> None:
    open_model(page, live_server, "controlnet-tiny")
    wait_control(page)
    with page.expect_request(lambda r: r.url.endswith("/api/trace") and "control_scales" in (r.post_data or "")) as req:
        page.fill("input.cn-scale[data-index='2']", "0.35")
        page.dispatch_event("input.cn-scale[data-index='2']", "change")
    sent = json.loads(req.value.post_data)["control_scales"]
    assert sent[2] == 0.35 and sent[0] == 1.0
    page.wait_for_function(
        "() => document.querySelector(\"path.cn-injection[data-index='2']\")?.dataset.scale === '0.35'"
    )
    wait_control(page)
    label = page.text_content("#controlnet .cn-edge-label[data-index='2']")
    assert "×0.35" in label
    mark = page.locator("#diagram .cn-on-u[data-index='2']")
    assert mark.get_attribute("data-scale") == "0.35" and "×0.35" in mark.text_content()
    # The global slider sets every injection.
    page.eval_on_selector("#cn-scale-all", "e => { e.value = '0.5'; e.dispatchEvent(new Event('input')); }")
    page.wait_for_function(
        "() => [...document.querySelectorAll('path.cn-injection')].every(e => e.dataset.scale === '0.5')",
        timeout=120_000,
    )
    assert console_errors == []


def test_a_controlnet_block_lists_its_names_in_both_layouts(page, live_server: str, console_errors: list[str]) -> None:
    open_model(page, live_server, "controlnet-tiny")
    wait_control(page)
    answer = httpx.post(f"{live_server}/api/diffusers-names", json={"preset": "controlnet-tiny"}, timeout=120)
    names = answer.json()["names"]
    page.click("#controlnet .cn-box[data-path='zero_convs.1']")
    page.wait_for_selector(".cn-names[data-path='zero_convs.1']")
    rows = page.eval_on_selector_all(
        ".cn-names tbody tr",
        "trs => trs.map(tr => [tr.querySelector('.cn-name-ldm').textContent, "
        "tr.querySelector('.cn-name-diffusers')?.textContent ?? null])",
    )
    assert rows and all(ldm.startswith("zero_convs.1") for ldm, _ in rows)
    assert rows == [[ldm, names.get(ldm)] for ldm, _ in rows]
    assert any(d and d.startswith("controlnet_down_blocks.1") for _, d in rows)
    assert console_errors == []


def test_a_controlnet_file_opens_beside_its_unet(page, live_server: str, console_errors: list[str]) -> None:
    path = DATA / "tiny_control_sd15.safetensors"
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = path.read_bytes()[8 : 8 + header_len].decode()
    headers = {"content-type": "application/json"}
    report = httpx.post(f"{live_server}/api/checkpoint/detect", content=header, headers=headers, timeout=120).json()
    assert report["kind"] == "controlnet"
    open_model(page, live_server, "tiny")
    page.set_input_files("#checkpoint-file", str(path))
    page.wait_for_selector("#checkpoint[data-state='done']", timeout=120_000)
    assert page.text_content("#checkpoint [data-field='kind']") == "ControlNet"
    wait_control(page)
    drawn = page.eval_on_selector_all("path.cn-injection", "els => els.map(e => e.dataset.to)")
    assert drawn == [p["target"] for p in report["injections"]]
    assert console_errors == []


def test_a_pasted_diffusers_config_draws(page, live_server: str, console_errors: list[str]) -> None:
    open_model(page, live_server, "tiny")
    body = {"diffusers_config": NO_MIDDLE}
    api = httpx.post(f"{live_server}/api/trace", json=body, timeout=120).json()
    _show_tools(page)
    page.click("#open-diffusers")
    page.fill("#diffusers-config", json.dumps(NO_MIDDLE))
    page.fill("#diffusers-name", "no-middle.json")
    page.click("#diffusers-draw")
    page.wait_for_function("() => document.body.dataset.preset === 'diffusers:no-middle.json'", timeout=120_000)
    page.wait_for_selector("body[data-ready='true']")
    paths = page.eval_on_selector_all(TOP, "els => els.map(e => e.dataset.path)")
    assert sorted(paths) == sorted(b["path"] for b in api["blocks"])
    assert "middle_block" not in paths
    # The whole model's explanation does not talk of a middle block it lacks.
    text = page.text_content("#details .explain")
    assert "no middle block" in text and "the middle works" not in text
    assert console_errors == []


def test_a_bad_diffusers_config_shows_the_servers_reason(page, live_server: str) -> None:
    open_model(page, live_server, "tiny")
    bad = {**NO_MIDDLE, "mid_block_type": "X"}
    answer = httpx.post(f"{live_server}/api/trace", json={"diffusers_config": bad}, timeout=60)
    assert answer.status_code == 422
    _show_tools(page)
    page.click("#open-diffusers")
    page.fill("#diffusers-config", json.dumps(bad))
    page.click("#diffusers-draw")
    page.wait_for_selector("#diffusers-open[data-state='error']")
    shown = page.text_content("#diffusers-error")
    assert answer.json()["reason"] in shown
    assert page.text_content("#diffusers-error .diffusers-field") == answer.json()["field"]
    # Text that is no JSON is refused in the page, with the parser's words.
    page.fill("#diffusers-config", "{not json")
    page.click("#diffusers-draw")
    page.wait_for_function("() => document.querySelector('#diffusers-error').textContent.includes('not JSON')")


def test_compare_with_the_parent_draws_removed_blocks(page, live_server: str, console_errors: list[str]) -> None:
    cmp = httpx.get(f"{live_server}/api/compare", params={"a": "sd1", "b": "bk-sdm-tiny"}, timeout=300).json()
    removed = [m["a"] for m in cmp["blocks"] if m["status"] == "removed"]
    assert removed
    open_model(page, live_server, "sd1")
    page.select_option("#compare-with", "bk-sdm-tiny")
    page.wait_for_selector("body[data-compare='true']", timeout=300_000)
    marked = page.eval_on_selector_all(
        "#compare [data-side='a'] g.box.cmp-removed", "els => els.map(e => e.dataset.path)"
    )
    assert sorted(marked) == sorted(removed)
    labels = page.eval_on_selector_all(
        "#compare [data-side='a'] .cmp-removed-label", "els => els.map(e => e.textContent)"
    )
    assert labels == ["removed in bk-sdm-tiny"] * len(removed)
    # The savings per stage are the API's.
    saved = {
        r: int(v)
        for r, v in page.eval_on_selector_all(
            ".variant-saved tbody tr",
            "trs => trs.map(tr => [tr.dataset.key, tr.querySelector(\"[data-field='params_saved']\").dataset.value])",
        )
    }
    assert saved == {r["key"]: r["params_saved"] for r in cmp["saved"]}
    # bk-sdm-tiny has no middle block: its whole-model explanation must not describe one.
    page.select_option("#compare-with", "")
    page.select_option("#model", "bk-sdm-tiny")
    page.wait_for_function("() => document.body.dataset.preset === 'bk-sdm-tiny'", timeout=120_000)
    page.wait_for_selector("body[data-ready='true']")
    if page.locator("#details").is_hidden():  # the details dock opens on demand
        page.click("#details-toggle")
    page.wait_for_selector("#details .explain")
    text = page.text_content("#details .explain")
    assert "no middle block" in text and "the middle works" not in text
    assert console_errors == []


def test_a_t2i_adapter_file_marks_its_injection_points_on_the_u(
    page, live_server: str, tmp_path: Path, console_errors: list[str]
) -> None:
    diffusers = pytest.importorskip("diffusers")
    import torch

    from tests.checkpoint_headers import header_bytes, make_header

    with torch.device("meta"):
        adapter = diffusers.T2IAdapter(
            in_channels=3, adapter_type="full_adapter", channels=[320, 640, 1280, 1280], num_res_blocks=2
        )
    header = make_header({k: tuple(v.shape) for k, v in adapter.state_dict().items()})
    # The page reads only the header: a file of the header alone is all it needs.
    path = tmp_path / "t2iadapter_canny.safetensors"
    path.write_bytes(header_bytes(header))
    headers = {"content-type": "application/json"}
    report = httpx.post(
        f"{live_server}/api/checkpoint/detect", content=json.dumps(header), headers=headers, timeout=120
    ).json()
    assert report["kind"] == "t2i_adapter"
    open_model(page, live_server, "tiny")
    page.set_input_files("#checkpoint-file", str(path))
    page.wait_for_selector("#checkpoint[data-state='done']", timeout=120_000)
    page.wait_for_function(f"() => document.body.dataset.preset === {('checkpoint:' + path.name)!r}", timeout=120_000)
    wait_control(page)
    page.wait_for_selector("body[data-ready='true']")
    marks = page.eval_on_selector_all(
        "#diagram .cn-on-u", "els => els.map(e => [e.closest('g.box').dataset.path, e.textContent])"
    )
    assert [m[0] for m in marks] == [p["target"] for p in report["injections"]]
    assert all(f"+{p['channels']} ch" in m[1] for m, p in zip(marks, report["injections"], strict=True))
    assert f"{report['num_parameters']:,}" in page.text_content("#controlnet")
    assert console_errors == []
