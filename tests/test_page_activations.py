"""The "Activations" panel in a real Chromium against a real server: the catalog (every point the API lists, its
search, a click that opens and selects the point's module on the U, a module selected on the U listing its
points), one capture drawn from the API's answer (previews, word heat maps, statistics, the timestep comparison),
the server's 4xx reasons beside the fields, the random-weights banner, and, on a server started with a tiny
whole checkpoint (UNet, VAE, CLIP), a capture of an uploaded image with real weights and the .safetensors export.

Every capture the page makes is made again through the API with the same body, and the page must show the API's
numbers. The page's CSP forbids eval, so every wait_for_function gets a function expression.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.activation_fixtures import png_bytes, write_checkpoint
from tests.harness import serve

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parent.parent
RESULTS = ROOT / "test-results"
TINY = {"preset": "tiny", "image_size": [128, 128]}
CAPTURE_S = 180_000  # ms: the first capture starts the capture process and builds the model


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """A desktop window: the tools row (names, block weights, the open dialogs) is open there."""
    return {**browser_context_args, "viewport": {"width": 1600, "height": 1000}}


def _post(url: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=300)


def _catalog(url: str, body: dict) -> dict:
    r = _post(url, "/api/activations/catalog", body)
    r.raise_for_status()
    return r.json()


def _open_panel(page, url: str, hash_: str = "tiny") -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{url}/#{hash_}")
    page.wait_for_function("() => document.body.dataset.ready === 'true'")
    page.locator("#activations").scroll_into_view_if_needed()
    page.wait_for_function("() => document.body.dataset.activations === 'true'")


def _shown_points(page) -> list[str]:
    return page.eval_on_selector_all("#act-list li.act-point", "els => els.map(e => e.dataset.name)")


def _search(page, text: str) -> None:
    page.fill("#act-search", text)
    page.wait_for_function("(t) => document.getElementById('act-list').dataset.query === t", arg=text)


def _capture(page) -> None:
    page.click("#act-capture")
    page.wait_for_function("() => ['done', 'error'].includes(document.body.dataset.capture)", timeout=CAPTURE_S)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-7)


def test_catalog_lists_the_api_points_and_ties_them_to_the_u(page, live_server, console_errors) -> None:
    cat = _catalog(live_server, TINY)
    _open_panel(page, live_server)
    points = cat["points"]

    # Every point, in the API's order, with its shape, module and who reads it.
    assert _shown_points(page) == [p["name"] for p in points]
    rows = page.eval_on_selector_all(
        "#act-list li.act-point",
        """els => els.map(e => [e.querySelector('[data-field=shape]').textContent,
                               e.querySelector('[data-field=module]').textContent,
                               [...e.querySelectorAll('[data-field=used-by]')].map(u => u.textContent)])""",
    )
    for p, (shape, module, used_by) in zip(points, rows, strict=True):
        assert shape == f"{'×'.join(map(str, p['shape']))} {p['layout']}"
        assert module == (p["module"] or f"{p['block_path']} (its input)")
        assert used_by == p["used_by"]
    assert any(p["used_by"] for p in points)
    assert f"{cat['count']} points" in page.locator("#activations .act-model").inner_text()

    # Search: every term must match; the kind names work as words.
    _search(page, "cross-q")
    assert _shown_points(page) == [p["name"] for p in points if p["kind"] == "cross-q"]
    _search(page, "DIFT")
    assert _shown_points(page) == [p["name"] for p in points if any("DIFT" in u for u in p["used_by"])]

    # A click on a point opens its block down to the module, selects it on the U and in the details.
    name = "up-level1-repeat1-vit-block0-cross-q"
    point = next(p for p in points if p["name"] == name)
    _search(page, name)
    assert _shown_points(page) == [name]
    page.click(f'#act-list [data-pick="{name}"]')
    selected = page.locator("#diagram g.box.selected")
    assert selected.get_attribute("data-path") == point["module"] == "output_blocks.4.1.transformer_blocks.0.attn2.to_q"
    for opened in ("output_blocks.4", "output_blocks.4.1", "output_blocks.4.1.transformer_blocks.0"):
        assert page.locator(f'#diagram g.box[data-path="{opened}"]').get_attribute("data-expanded") == "true"
    assert page.locator("#details h2").inner_text() == point["module"]
    assert page.locator(f'#act-list li[data-name="{name}"]').get_attribute("class").split() == ["act-point", "current"]

    # A module selected on the U lists its points (the search cleared).
    _search(page, "")
    page.locator("#diagram").scroll_into_view_if_needed()
    page.locator('#diagram g.box[data-path="input_blocks.4"] > .card').click()
    assert page.locator("#diagram g.box.selected").get_attribute("data-path") == "input_blocks.4"
    want = [p["name"] for p in points if p["block_path"] == "input_blocks.4"]
    assert _shown_points(page) == want and len(want) == 13
    assert "Points in input_blocks.4 (selected on the U): 13." in page.locator("#activations .act-scope").inner_text()
    # A module that no point reads itself lists the points of the nearest module around it.
    page.locator('#diagram g.box[data-path="input_blocks.4.0"] > .card').click()
    page.locator('#diagram g.box[data-path="input_blocks.4.0.in_layers"] > .card').click()
    assert _shown_points(page) == ["down-level1-repeat0-res-increment", "down-level1-repeat0-res-out"]
    assert "the points of input_blocks.4.0 around it" in page.locator("#activations .act-scope").inner_text()
    page.get_by_role("button", name="Show all points").click()
    assert len(_shown_points(page)) == cat["count"]
    assert console_errors == []


def test_the_random_weights_banner_offers_the_trained_twin_and_says_so_once_shown(page, live_server, console_errors):
    _open_panel(page, live_server)
    banner = page.locator("#act-weights-banner")
    assert banner.get_attribute("data-banner") == "random"
    page.click("#act-to-twin")
    page.wait_for_function("() => document.body.dataset.preset === 'twin' && document.body.dataset.ready === 'true'")
    page.wait_for_function("() => document.getElementById('act-weights-banner').dataset.banner === 'real'")
    text = banner.inner_text()
    assert text.startswith("Trained weights: twin.safetensors (the twin") and "Random" not in text
    assert page.locator("#act-to-twin").count() == 0
    assert console_errors == []


def test_a_capture_shows_the_api_previews_heat_maps_and_statistics(page, live_server, console_errors) -> None:
    _open_panel(page, live_server)
    banner = page.locator("#act-weights-banner")
    assert banner.get_attribute("data-banner") == "random"
    assert "shapes, not meaning" in banner.inner_text()

    page.fill("#act-timestep", "300")
    page.fill("#act-compare", "320")
    page.fill("#act-prompt", "a red cat")
    page.fill("#act-seed", "7")
    extra = "down-level1-repeat0-vit-block0-self-map"
    _search(page, extra)
    page.check(f'#act-list input[data-tick="{extra}"]')
    _capture(page)
    assert page.evaluate("() => document.body.dataset.capture") == "done"

    body = {**TINY, "points": ["@outputs", "@cross-maps", extra], "seed": 7, "timestep": 300,
            "compare_timestep": 320, "prompt": "a red cat"}  # fmt: skip
    r = _post(live_server, "/api/activations/capture", body)
    assert r.status_code == 200, r.text
    api = r.json()
    results = page.locator("#act-results")

    # The server's random-weights notice, in a banner above the pictures.
    notice = results.locator('[data-banner="random"]')
    assert notice.is_visible() and api["random_weights"] is True
    assert api["notice"] in notice.inner_text() and "Shapes, not meaning" in notice.inner_text()
    assert "t = 300, compared with t = 320" in results.locator('[data-field="timestep"]').inner_text()
    assert results.locator('[data-field="tokens"]').inner_text() == " · ".join(t["text"] for t in api["tokens"])

    # One tile per point with a preview: the server's PNG at the point's own resolution.
    with_preview = [a for a in api["activations"] if a["preview"]]
    tiles = results.locator(".act-tile")
    assert tiles.evaluate_all("els => els.map(e => e.dataset.point)") == [a["name"] for a in with_preview]
    page.wait_for_function("() => [...document.querySelectorAll('.act-tile img')].every(i => i.complete)")
    natural = tiles.evaluate_all(
        "els => els.map(e => { const i = e.querySelector('img, canvas');"
        " return i.tagName === 'IMG' ? [i.naturalWidth, i.naturalHeight] : [i.width, i.height]; })"
    )
    assert natural == [[a["preview"]["width"], a["preview"]["height"]] for a in with_preview]
    # PCA previews are RGB images; the self-attention preview is a heat map, drawn in the heat maps' colours.
    kinds = tiles.evaluate_all("els => els.map(e => e.dataset.previewKind)")
    assert kinds == [a["preview"]["kind"] for a in with_preview]
    assert kinds.count("heat") == 1 and kinds[[a["name"] for a in with_preview].index(extra)] == "heat"
    assert results.locator(f'.act-tile[data-point="{extra}"] canvas.act-heat').count() == 1
    srcs = tiles.locator("img").evaluate_all("els => els.map(i => i.getAttribute('src'))")
    assert len(srcs) == len(with_preview) - 1
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"

    # Word heat maps: one column per token entry, the aggregates and every layer, each map drawn at its size.
    hm = api["heatmaps"]
    heads = results.locator('table[data-table="aggregated"] thead th').all_inner_texts()
    assert heads[1:] == [t["text"] for t in hm["tokens"]]
    sets = [hm["overall"], *hm["resolutions"]]
    agg_rows = results.locator('table[data-table="aggregated"] tbody tr')
    assert agg_rows.evaluate_all("els => els.map(e => e.dataset.set)") == [s["name"] for s in sets]
    layer_rows = results.locator('table[data-table="layers"] tbody tr')
    assert layer_rows.evaluate_all("els => els.map(e => e.dataset.set)") == [s["name"] for s in hm["layers"]]
    page.wait_for_function("() => [...document.querySelectorAll('canvas.act-heat')].every(c => c.dataset.drawn)")
    shown = agg_rows.evaluate_all(
        "rows => rows.map(r => [...r.querySelectorAll('td')].map(td => [td.querySelector('canvas').width, "
        "td.querySelector('canvas').height, +td.querySelector('.act-heat-max').dataset.value]))"
    )
    for s, cells in zip(sets, shown, strict=True):
        assert len(cells) == len(hm["tokens"])
        for m, (w, h, top) in zip(s["maps"], cells, strict=True):
            assert (w, h) == (m["width"], m["height"]) and _close(top, m["max"])
    # The maps are coloured: a map with structure has more than one colour on its canvas.
    colours = page.evaluate(
        """() => { const c = document.querySelector('table[data-table="aggregated"] canvas');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   const s = new Set(); for (let i = 0; i < d.length; i += 4) s.add(d[i] + ',' + d[i+1] + ',' + d[i+2]);
                   return s.size; }"""
    )
    assert colours > 1
    # Stretched from its smallest to its largest value, a map runs the whole ramp: its darkest pixel is the ramp's
    # first colour, its brightest the last.
    page.check("#act-stretch")
    ends = page.evaluate(
        """() => { const c = document.querySelector('table[data-table="aggregated"] canvas');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   const px = []; for (let i = 0; i < d.length; i += 4) px.push([d[i], d[i+1], d[i+2]]);
                   px.sort((a, b) => (a[0] + a[1] + a[2]) - (b[0] + b[1] + b[2]));
                   return [c.dataset.stretched, px[0], px[px.length - 1]]; }"""
    )
    assert ends == ["true", [0, 0, 4], [252, 255, 164]]
    page.uncheck("#act-stretch")

    # Statistics: the API's numbers, and the cosine to the second timestep for every point that has one.
    rows = results.locator(".act-stats tbody tr")
    assert rows.evaluate_all("els => els.map(e => e.dataset.point)") == [a["name"] for a in api["activations"]]
    cells = rows.evaluate_all(
        "els => els.map(e => Object.fromEntries("
        "[...e.querySelectorAll('td[data-field]')].map(td => [td.dataset.field, +td.dataset.value])))"
    )
    for a, c in zip(api["activations"], cells, strict=True):
        for f in ("mean", "std", "min", "max"):
            assert _close(c[f], a["stats"][f]), (a["name"], f)
        if a["cosine_to_compare"] is not None:
            assert _close(c["cos"], a["cosine_to_compare"]), a["name"]
        else:
            assert "cos" not in c
    # The histogram of the first point, drawn with the API's bins.
    page.wait_for_function("() => document.getElementById('act-hist').data?.length === 1")
    hist = page.evaluate("() => document.getElementById('act-hist').data[0].y")
    assert hist == api["activations"][0]["stats"]["histogram"]["counts"]

    # The timestep comparison: every block output with its cosine, in forward order.
    cat = _catalog(live_server, TINY)
    outputs = {p["name"] for p in cat["points"] if p["block_output"]}
    want = [(a["name"], a["cosine_to_compare"]) for a in api["activations"] if a["name"] in outputs]
    page.wait_for_function("() => document.getElementById('act-cos-chart').data?.length === 1")
    chart = page.evaluate("() => { const d = document.getElementById('act-cos-chart').data[0]; return [d.x, d.y]; }")
    assert chart[0] == [n for n, _ in want] and all(_close(a, b) for a, (_, b) in zip(chart[1], want, strict=True))
    # Cosines near 1 are drawn on a zoomed axis, and the page says where it starts (not silently near 0.99).
    start, title = page.evaluate(
        "() => { const y = document.getElementById('act-cos-chart').layout.yaxis; return [y.range[0], y.title.text]; }"
    )
    assert start <= min(b for _, b in want)
    assert start > 0, "these cosines are all near 1: the axis is zoomed"
    assert title == f"cosine similarity (from {start:.3f})"
    note = results.locator('[data-field="cos-axis"]').inner_text()
    assert f"The axis starts at {start:.3f}, not at 0" in note

    # A tile picks its point: histogram, list and U follow.
    tile_name = "up-level1-repeat0-vit-out"
    results.locator(f'.act-tile[data-point="{tile_name}"]').click()
    page.wait_for_function("(n) => document.getElementById('act-hist').dataset.shown === n", arg=tile_name)
    module = next(p["module"] for p in cat["points"] if p["name"] == tile_name)
    assert page.locator("#diagram g.box.selected").get_attribute("data-path") == module
    hist = page.evaluate("() => document.getElementById('act-hist').data[0].y")
    assert hist == next(a for a in api["activations"] if a["name"] == tile_name)["stats"]["histogram"]["counts"]

    RESULTS.mkdir(exist_ok=True)
    page.evaluate("() => document.getElementById('act-results').scrollIntoView({ block: 'start' })")
    page.screenshot(path=str(RESULTS / "page-activations.png"))
    page.locator("#activations").screenshot(path=str(RESULTS / "page-activations-panel.png"))
    assert console_errors == []


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_bad_input_shows_the_server_reason_beside_the_field(page, live_server, console_errors) -> None:
    _open_panel(page, live_server)
    base = {**TINY, "points": ["@outputs", "@cross-maps"], "seed": 0, "compare_timestep": 281}

    def api_reason(**body) -> dict:
        r = _post(live_server, "/api/activations/capture", {**base, "timestep": 261, "prompt": "", **body})
        assert r.status_code == 422, r.text
        return r.json()

    # A timestep out of range.
    page.fill("#act-timestep", "1200")
    _capture(page)
    want = api_reason(timestep=1200)
    assert want["field"] == "timestep"
    slot = page.locator("#act-error-timestep")
    expect(slot).to_have_text(want["reason"])  # waits for the server's answer
    assert slot.is_visible()
    assert page.locator("#act-timestep").get_attribute("aria-invalid") == "true"

    # A prompt over CLIP's 77 tokens; the timestep's error is gone.
    page.fill("#act-timestep", "261")
    page.fill("#act-prompt", "cat " * 80)
    _capture(page)
    want = api_reason(prompt="cat " * 80)
    assert want["field"] == "prompt"
    assert page.locator("#act-error-timestep").is_hidden()
    expect(page.locator("#act-error-prompt")).to_have_text(want["reason"])  # waits for the server's answer

    # A file that is no image, uploaded as one.
    page.fill("#act-prompt", "")
    junk = b"this is not a picture"
    page.set_input_files("#act-image", files=[{"name": "cat.png", "mimeType": "image/png", "buffer": junk}])
    assert page.locator('input[name="act-source"][value="image"]').is_checked()
    _capture(page)
    want = api_reason(image=f"data:image/png;base64,{_b64(junk)}")
    assert want["field"] == "image"
    expect(page.locator("#act-error-image")).to_have_text(want["reason"])  # waits for the server's answer
    assert page.evaluate("() => document.body.dataset.capture") == "error"
    assert page.locator("#act-results").inner_text() == ""
    # The browser reports each refused request on the console; nothing else may be there.
    assert [e for e in console_errors if "status of 422" not in e] == []


# ---- a server with real weights -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A uvicorn process started with a tiny whole SD 1.x checkpoint (UNet, VAE, CLIP text encoder)."""
    path = tmp_path_factory.mktemp("act-ckpt") / "tiny-sd1.safetensors"
    write_checkpoint(path)
    env = {"SDUNET_WEIGHTS": str(path), "SDUNET_TRACE_WORKERS": "0"}
    with serve(env=env, log=tmp_path_factory.mktemp("act-server") / "uvicorn.log") as (url, _proc):
        yield url


def test_real_weights_capture_an_uploaded_image_and_export_it(page, checkpoint_server, console_errors, tmp_path):
    from safetensors.torch import load

    url = checkpoint_server
    key = "weights:tiny-sd1.safetensors"
    _open_panel(page, url, key)
    # At 128 px (a 16x16 latent): the VAE and the UNet run in a moment on the CPU.
    page.fill("#image-size", "128")
    page.locator("#image-size").dispatch_event("change")
    page.wait_for_function(
        "() => document.body.dataset.activations === 'true' && "
        "document.querySelector('#activations .act-model').textContent.includes('128×128')"
    )
    banner = page.locator("#act-weights-banner")
    assert banner.get_attribute("data-banner") == "real" and "tiny-sd1.safetensors" in banner.inner_text()
    cat = _catalog(url, {"use_weights": True, "image_size": [128, 128]})
    assert cat["image_size"] == [128, 128]
    assert page.locator("#act-list li.act-point").count() == cat["count"]

    images = [png_bytes(96, 80, seed=1), png_bytes(64, 64, seed=2)]
    page.set_input_files(
        "#act-image",
        files=[{"name": f"img{i}.png", "mimeType": "image/png", "buffer": b} for i, b in enumerate(images)],
    )
    page.fill("#act-prompt", "a photo of a dog")
    page.uncheck("#act-compare-on")
    _capture(page)
    assert page.evaluate("() => document.body.dataset.capture") == "done", page.locator("#act-form-error").inner_text()
    results = page.locator("#act-results")
    assert results.locator('[data-banner="random"]').count() == 0
    assert "tiny-sd1.safetensors" in results.locator('[data-banner="real"]').inner_text()
    assert "encoded by the checkpoint's VAE" in results.locator('[data-field="latent"]').inner_text()
    assert "text encoder" in results.locator('[data-field="context"]').inner_text()
    assert results.locator('[data-part="cosine"]').count() == 0
    # The heat maps lie over the first image, cropped as the UNet saw it; the box takes them off it.
    heat = results.locator('[data-part="heatmaps"]')
    assert "act-over-image" in heat.get_attribute("class")
    assert results.locator("img.act-seen").get_attribute("src") == f"data:image/png;base64,{_b64(images[0])}"
    page.uncheck("#act-over-image")
    assert "act-over-image" not in heat.get_attribute("class")

    # The same capture through the API: the page's statistics are its numbers.
    first = f"data:image/png;base64,{_b64(images[0])}"
    body = {"use_weights": True, "image_size": cat["image_size"], "points": ["@outputs", "@cross-maps"], "seed": 0,
            "timestep": 261, "prompt": "a photo of a dog", "image": first}  # fmt: skip
    api = _post(url, "/api/activations/capture", body).json()
    assert api["random_weights"] is False and api["inputs"]["latent_source"] == "vae"
    means = results.locator('.act-stats td[data-field="mean"]').evaluate_all("els => els.map(e => +e.dataset.value)")
    assert all(_close(m, a["stats"]["mean"]) for m, a in zip(means, api["activations"], strict=True))

    # Export: block outputs only, both images stacked on the first axis; the file is the API's.
    page.uncheck('.act-groups input[value="@cross-maps"]')
    with page.expect_download(timeout=CAPTURE_S) as info:
        page.click("#act-export")
    download = info.value
    assert download.suggested_filename == "activations-tiny-sd1-t261.safetensors"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    tensors = load(saved.read_bytes())
    outputs = cat["groups"]["@outputs"]
    shapes = {p["name"]: p["shape"] for p in cat["points"]}
    assert sorted(tensors) == sorted(outputs)
    for name in outputs:
        assert list(tensors[name].shape) == [2, *shapes[name][1:]], name
    second = f"data:image/png;base64,{_b64(images[1])}"
    export = {"use_weights": True, "image_size": cat["image_size"], "seed": 0, "timestep": 261,
              "prompt": "a photo of a dog", "export": ["@outputs"], "images": [first, second]}  # fmt: skip
    want = _post(url, "/api/activations/export", export)
    assert want.status_code == 200
    expected = load(want.content)
    for name in outputs:
        assert (tensors[name] - expected[name]).abs().max().item() <= 1e-5, name
    page.wait_for_function("() => document.body.dataset.exported === 'done'")
    assert "Saved activations-tiny-sd1-t261.safetensors" in page.locator("#act-status").inner_text()
    assert console_errors == []
