"""The page with your own files: "Open checkpoint" reads a .safetensors header in the browser and opens the UNet it
holds; the details panel names each module in diffusers; a server started with a weights file shows each module's
weight statistics and histogram. Tensor names, file names and metadata are the user's data: they show as text and
never become elements.

Real files are written with safetensors from a tiny random UNet; Chromium reads them through the file input.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import save_file

from sdunet_core import PRESETS, UNetModel
from sdunet_core.checkpoint.diffusers_keys import to_diffusers_name
from tests.harness import serve

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """A desktop window: the tools row is open there (test_page_fit.py checks the laptop and projector sizes)."""
    return {**browser_context_args, "viewport": {"width": 1600, "height": 1000}}


ROOT = Path(__file__).parent.parent
RESULTS = ROOT / "test-results"
TOP = "svg.unet .layer-boxes > g.box"
PREFIX = "model.diffusion_model."
VAE = {
    "first_stage_model.decoder.conv_in.weight": torch.zeros(8, 4, 3, 3),
    "first_stage_model.encoder.conv_out.bias": torch.zeros(8),
}
XSS_NAMES = ("<img src=x onerror=alert(1)>", "<script>alert(2)</script>")


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(11)
    return {k: v.contiguous() for k, v in UNetModel(PRESETS["tiny"].config).state_dict().items()}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_state: dict[str, torch.Tensor]) -> dict[str, Path]:
    """Every file the tests open, written once."""
    d = tmp_path_factory.mktemp("ckpt")
    out = {
        "ldm": d / "tiny.safetensors",
        "diffusers": d / "diffusion_pytorch_model.safetensors",
        "vae": d / "vae-only.safetensors",
        "random": d / "random.safetensors",
        "garbage": d / "garbage.safetensors",
        "pickle": d / "model.ckpt",
        "xss": d / "x<img src=x onerror=alert(5)>.safetensors",
    }
    save_file({**{PREFIX + k: v for k, v in tiny_state.items()}, **VAE}, str(out["ldm"]))
    config = PRESETS["tiny"].config
    save_file({to_diffusers_name(k, config): v for k, v in tiny_state.items()}, str(out["diffusers"]))
    save_file(VAE, str(out["vae"]))
    gen = torch.Generator().manual_seed(3)
    out["random"].write_bytes(bytes(torch.randint(0, 256, (4096,), generator=gen, dtype=torch.uint8).tolist()))
    # A plausible length, then bytes that are no JSON: the page sends them and the server says why.
    junk = b"\x00\x01 not a header \xff\xfe" * 4
    out["garbage"].write_bytes(struct.pack("<Q", len(junk)) + junk + b"\x00" * 64)
    out["pickle"].write_bytes(b"\x80\x02}q\x00." + b"\x00" * 64)
    # The tiny UNet plus tensors and metadata whose names are markup.
    xss = {PREFIX + k: v for k, v in tiny_state.items()}
    xss[PREFIX + XSS_NAMES[0]] = torch.zeros(1)
    xss[XSS_NAMES[1] + ".weight"] = torch.zeros(1)
    save_file(xss, str(out["xss"]), metadata={XSS_NAMES[0]: XSS_NAMES[1], "note": "<b>bold</b>"})
    return out


@pytest.fixture(scope="module")
def weights_server(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second uvicorn process, started with the tiny checkpoint as its weights file (SDUNET_WEIGHTS)."""
    # Traces in the server's own threads: the tiny model needs no worker processes, and it starts faster.
    env = {"SDUNET_WEIGHTS": str(files["ldm"]), "SDUNET_TRACE_WORKERS": "0"}
    with serve(env=env, log=tmp_path_factory.mktemp("wserver") / "uvicorn.log") as (url, _proc):
        yield url


def _wait_model(page, key: str) -> None:
    page.wait_for_function(
        "(k) => document.body.dataset.ready === 'true' && document.body.dataset.preset === k", arg=key
    )


def _open_file(page, path: Path) -> None:
    page.locator("#checkpoint-file").set_input_files(str(path))
    page.wait_for_function("() => ['done', 'error'].includes(document.getElementById('checkpoint').dataset.state)")


def _top_paths(page) -> list[str]:
    return page.eval_on_selector_all(TOP, "els => els.map(e => e.dataset.path)")


def _field(panel, name: str) -> str:
    return panel.locator(f'[data-field="{name}"]').inner_text()


def _detect(url: str, path: Path) -> tuple[int, dict]:
    """What the API says about a file's header (sent the way the page sends it)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    text = raw[8 : 8 + n].decode("utf-8", errors="replace")  # as the page's TextDecoder does
    r = httpx.post(
        f"{url}/api/checkpoint/detect", content=text.encode(), headers={"Content-Type": "application/json"}, timeout=60
    )
    return r.status_code, r.json()


def test_open_an_ldm_checkpoint_shows_it_and_draws_its_unet(page, live_server, console_errors, files) -> None:
    page.set_viewport_size({"width": 1500, "height": 1000})
    page.goto(f"{live_server}/#sd1")
    _wait_model(page, "sd1")
    panel = page.get_by_role("region", name="Checkpoint")
    assert panel.is_hidden()
    _open_file(page, files["ldm"])
    assert panel.get_attribute("data-state") == "done"
    assert _field(panel, "file") == "tiny.safetensors"
    assert _field(panel, "format").startswith("ldm")
    assert _field(panel, "prefix") == PREFIX
    assert _field(panel, "preset").startswith("tiny")
    status, det = _detect(live_server, files["ldm"])
    assert status == 200
    assert f"{det['num_parameters']:,}" in _field(panel, "params")
    assert "F32" in _field(panel, "dtypes")
    assert "first_stage_model" in _field(panel, "other")
    for kind in ("missing", "unexpected", "mismatched"):
        assert "(0)" in _field(panel, kind)
    assert det["notes"] and det["notes"][0] in _field(panel, "notes")

    # The detected architecture opens like a preset, traced from its config.
    key = "checkpoint:tiny.safetensors"
    _wait_model(page, key)
    trace = httpx.post(f"{live_server}/api/trace", json={"config": det["config"]}, timeout=60).json()
    paths = _top_paths(page)
    assert paths == [b["path"] for b in trace["blocks"]]
    assert [p for p in paths if p.startswith("input_blocks.")] == [f"input_blocks.{i}" for i in range(9)]
    assert [p for p in paths if p.startswith("output_blocks.")] == [f"output_blocks.{i}" for i in range(9)]
    select = page.get_by_label("Model", exact=True)
    assert select.input_value() == key
    assert select.locator("option:checked").inner_text() == "From checkpoint: tiny.safetensors"
    assert "From checkpoint: tiny.safetensors" in page.locator("#summary").inner_text()
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "page-checkpoint.png"))

    # Back to a preset and to the checkpoint again from the selector.
    select.select_option("sd1")
    _wait_model(page, "sd1")
    select.select_option(key)
    _wait_model(page, key)
    assert _top_paths(page) == paths

    # A reload keeps the checkpoint's model (its architecture is remembered in this tab; the file is not read again).
    assert "checkpoint" in page.evaluate("() => location.hash")
    page.reload()
    _wait_model(page, key)
    assert _top_paths(page) == paths
    assert page.get_by_label("Model", exact=True).input_value() == key
    assert console_errors == []


def test_a_diffusers_file_detects_as_diffusers(page, live_server, console_errors, files) -> None:
    page.goto(f"{live_server}/#tiny")
    _wait_model(page, "tiny")
    _open_file(page, files["diffusers"])
    panel = page.get_by_role("region", name="Checkpoint")
    assert _field(panel, "format").startswith("diffusers")
    assert _field(panel, "prefix") == "(none)"
    assert _field(panel, "preset").startswith("tiny")
    _wait_model(page, "checkpoint:diffusion_pytorch_model.safetensors")
    assert len([p for p in _top_paths(page) if p.startswith("input_blocks.")]) == 9
    assert console_errors == []


def test_files_without_a_unet_show_the_reason(page, live_server, console_errors, files) -> None:
    page.goto(f"{live_server}/#tiny")
    _wait_model(page, "tiny")
    panel = page.get_by_role("region", name="Checkpoint")
    # Random bytes: the first 8 give an absurd header length, and the page refuses before any upload.
    _open_file(page, files["random"])
    assert panel.get_attribute("data-state") == "error"
    assert "not a safetensors file" in _field(panel, "error")
    # A pickle (.ckpt) is not opened in the browser; the panel says how to read it instead.
    _open_file(page, files["pickle"])
    assert "sdunet-explorer inspect" in _field(panel, "error")
    # A plausible length over bytes that are no JSON, and a header with only VAE tensors: the API's reason.
    for name, status in (("garbage", 400), ("vae", 422)):
        code, body = _detect(live_server, files[name])
        assert code == status, body
        _open_file(page, files[name])
        assert panel.get_attribute("data-state") == "error"
        assert body["reason"] in _field(panel, "error")
        assert _field(panel, "error-field").endswith(body["field"])
    # The explorer still shows the model it had.
    assert page.evaluate("() => document.body.dataset.preset") == "tiny"
    # Chromium itself logs each 4xx response as "Failed to load resource"; nothing else may appear.
    assert [e for e in console_errors if "the server responded with a status of 4" not in e] == []
    assert len(console_errors) <= 2


def test_markup_in_names_stays_text(page, live_server, console_errors, files) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{live_server}/#tiny")
    _wait_model(page, "tiny")
    _open_file(page, files["xss"])
    panel = page.get_by_role("region", name="Checkpoint")
    assert panel.get_attribute("data-state") == "done"
    assert _field(panel, "file") == files["xss"].name
    assert XSS_NAMES[0] in _field(panel, "unexpected")
    assert XSS_NAMES[1] in _field(panel, "other")
    panel.locator("details.ckpt-meta > summary").click()
    meta = _field(panel, "metadata")
    assert XSS_NAMES[0] in meta and XSS_NAMES[1] in meta and "<b>bold</b>" in meta
    key = f"checkpoint:{files['xss'].name}"
    _wait_model(page, key)
    assert (
        page.get_by_label("Model", exact=True).locator("option:checked").inner_text()
        == f"From checkpoint: {files['xss'].name}"
    )
    page.wait_for_timeout(200)  # an onerror handler, if one had been made, would have run by now
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("#checkpoint script, #checkpoint b, #summary img").count() == 0
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0
    assert dialogs == []
    RESULTS.mkdir(exist_ok=True)
    panel.screenshot(path=str(RESULTS / "page-checkpoint-markup.png"))
    assert console_errors == []


def test_details_show_the_diffusers_name(page, live_server, console_errors) -> None:
    page.goto(f"{live_server}/#sd1")
    _wait_model(page, "sd1")
    details = page.get_by_role("region", name="Details")
    page.locator('[data-path="input_blocks.1"] > .card').click()
    _wait_model(page, "sd1")
    page.locator('[data-path="input_blocks.1.1"] > .card').click()
    row = details.locator('[data-field="diffusers"]')
    row.wait_for()
    assert row.inner_text() == "down_blocks.0.attentions.0"
    assert details.locator("dt", has_text="diffusers name").count() == 1
    # A module without weights has no diffusers counterpart: no row (the names are loaded by now).
    page.locator('[data-path="time_embed"] > .card').click()
    _wait_model(page, "sd1")
    page.locator('[data-path="time_embed.1"] > .card').click()
    assert details.locator("h2").inner_text() == "time_embed.1"
    assert details.locator('[data-field="diffusers"]').count() == 0
    page.locator('[data-path="time_embed.0"] > .card').click()
    row.wait_for()
    assert row.inner_text() == "time_embedding.linear_1"
    assert console_errors == []


def test_weights_file_stats_histogram_and_profile(page, weights_server, console_errors) -> None:
    page.set_viewport_size({"width": 1500, "height": 1000})
    page.goto(weights_server)
    _wait_model(page, "tiny")  # the weights' architecture is a preset: it opens first
    badge = page.locator("#weights-badge")
    assert badge.is_visible() and badge.inner_text() == "Weights: tiny.safetensors"
    details = page.get_by_role("region", name="Details")
    page.locator('[data-path="input_blocks.4"] > .card').click()
    _wait_model(page, "tiny")
    assert details.locator("h2").inner_text() == "input_blocks.4"
    hist = details.locator('[data-field="w-hist"][data-drawn="true"]')
    hist.wait_for()
    stats = httpx.get(f"{weights_server}/api/weights/stats", params={"path": "input_blocks.4"}, timeout=60).json()
    assert details.locator('[data-field="w-count"]').inner_text() == f"{stats['count']:,}"
    for k in ("mean", "std", "norm", "min", "max"):
        shown = float(details.locator(f'[data-field="w-{k}"]').inner_text().replace("−", "-"))
        assert shown == pytest.approx(stats[k], rel=1e-3, abs=1e-12), k
    assert hist.locator(".js-plotly-plot .bars path").count() > 0 or hist.locator(".main-svg").count() > 0
    assert details.get_by_role("region", name="Weights").is_visible()
    tensors = details.locator('[data-field="w-tensors"]')
    tensors.locator("summary").click()
    # The dock is drawn again when the model's names arrive: the unfolded list must stay open through that.
    page.wait_for_selector("body[data-names]", state="attached")
    tensors.locator("li").first.wait_for(state="visible")
    assert tensors.locator("li").count() == len(stats["tensors"])
    details.screenshot(path=str(RESULTS / "page-weights-details.png"))
    first = stats["tensors"][0]  # named below the module's path, with shape and dtype
    assert (
        tensors.locator("li")
        .first.inner_text()
        .startswith(
            f"{first['key'].removeprefix('input_blocks.4.')} [{', '.join(map(str, first['shape']))}] {first['dtype']}"
        )
    )
    page.screenshot(path=str(RESULTS / "page-weights.png"))

    # A module without parameters says so; the whole model gets its statistics too (tiny: under the threshold).
    page.locator('[data-path="input_blocks.4.0"] > .card').click()
    _wait_model(page, "tiny")
    page.locator('[data-path="input_blocks.4.0.in_layers"] > .card').click()
    _wait_model(page, "tiny")
    page.locator('[data-path="input_blocks.4.0.in_layers.1"] > .card').click()
    assert details.locator('[data-field="w-none"]').is_visible()

    # Profile runs with the weights, because tiny is their architecture.
    with page.expect_request(lambda r: r.url.endswith("/api/profile") and r.method == "POST") as req:
        page.get_by_role("button", name="Profile").click()
    assert json.loads(req.value.post_data)["use_weights"] is True
    # Another architecture: no statistics, and profiles use random weights.
    page.get_by_label("Model", exact=True).select_option("ldm-churches")
    _wait_model(page, "ldm-churches")
    assert details.get_by_role("region", name="Weights").count() == 0
    assert console_errors == []
