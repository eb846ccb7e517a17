"""Bounded work and no 5xx from input: every request that would build an unbounded
model, overflow an integer or hold the server is a 4xx naming the field, answered before any model is built;
types are strict; errors quote only a short prefix of what was sent."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest

from app.deps import current_settings
from app.settings import get_settings
from sdunet_core import PRESETS
from tests.checkpoint_headers import make_header, preset_shapes, shapes_of

TINY = {
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 8,
    "channel_mult": [1],
    "num_res_blocks": 1,
    "attention_resolutions": [],
    "num_heads": 1,
    "norm_groups": 8,
}


def _fields(r) -> tuple[int, str | None]:  # type: ignore[no-untyped-def]
    body = r.json()
    assert body["detail"] == (f"{body['field']}: {body['reason']}" if body["field"] else body["reason"])
    return r.status_code, body["field"]


@pytest.mark.parametrize("blocks", [100_000, 1_000_000])
def test_a_million_res_blocks_is_refused_before_validation(client, blocks: int) -> None:
    # Validating this config used to take 28 s and 1.8 GB on the event loop; the bound is checked first.
    r = client.post("/api/trace", json={"config": {**TINY, "num_res_blocks": blocks}})
    assert _fields(r) == (422, "num_res_blocks")
    assert r.json()["reason"] == f"{blocks} is over the limit of 256"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("in_channels", 2**62),
        ("out_channels", 2**62),
        ("model_channels", 2**60),
        ("num_classes", 2**62),
        ("context_dim", 2**62),
        ("channel_mult", [1, 2**62]),
        ("transformer_depth", 10_000),
    ],
)
def test_huge_integers_are_422_naming_the_field(client, field: str, value: object) -> None:
    r = client.post("/api/trace", json={"config": {**TINY, field: value}})
    assert _fields(r) == (422, field)
    assert "over the limit" in r.json()["reason"]


def test_adm_in_channels_overflow(client) -> None:
    config = {**PRESETS["tiny"].config.to_dict(), "adm_in_channels": 2**62}
    r = client.post("/api/trace", json={"config": config})
    assert _fields(r) == (422, "adm_in_channels")


def test_too_many_levels_names_channel_mult(client) -> None:
    r = client.post("/api/trace", json={"config": {**TINY, "channel_mult": [1] * 100}})
    assert _fields(r) == (422, "channel_mult")
    assert r.json()["reason"] == "has 100 entries; at most 16 levels"
    # Within the bound, but the smallest input the U takes is over the image size limit.
    r = client.post("/api/trace", json={"config": {**TINY, "channel_mult": [1] * 16}})
    assert _fields(r) == (413, "channel_mult")


def test_over_the_module_limit_is_413_before_building(client) -> None:
    # 4 levels of 200 res blocks: valid, but ~24,000 modules; refused from the estimate alone.
    config = {**TINY, "channel_mult": [1, 1, 1, 1], "num_res_blocks": 200}
    for path, body in (
        ("/api/trace", {"config": config}),
        ("/api/diffusers-names", {"config": config}),
        ("/api/profile", {"config": config, "repeats": 1}),
    ):
        r = client.post(path, json=body)
        assert _fields(r) == (413, "config"), path
        assert "modules, over the limit of 20,000 (SDUNET_MAX_MODULES)" in r.json()["reason"]


def test_over_the_parameter_limit_is_413(client) -> None:
    r = client.post("/api/trace", json={"ldm_params": {**TINY, "model_channels": 2**20, "norm_groups": 32}})
    assert _fields(r) == (413, "ldm_params")
    assert "parameters, over the limit" in r.json()["reason"]


@pytest.fixture
def small_activation_limit(client) -> Iterator[None]:
    settings = dataclasses.replace(get_settings(), max_activation_bytes=2**30)
    client.app.dependency_overrides[current_settings] = lambda: settings
    yield
    client.app.dependency_overrides.pop(current_settings)


def test_over_the_activation_limit_names_the_input(client, small_activation_limit) -> None:
    r = client.post("/api/trace", json={"preset": "sd1", "image_size": [1024, 1024]})
    assert _fields(r) == (413, "image_size")
    assert "GiB of activations, over the limit of 1 GiB (SDUNET_MAX_ACTIVATION_GB)" in r.json()["reason"]
    r = client.post("/api/trace", json={"preset": "sd1", "batch": 4})
    assert _fields(r) == (413, "batch")


@pytest.fixture
def no_time(client) -> Iterator[None]:
    settings = dataclasses.replace(get_settings(), trace_time_limit_s=0)
    client.app.dependency_overrides[current_settings] = lambda: settings
    yield
    client.app.dependency_overrides.pop(current_settings)


def test_the_time_limit_covers_building_the_model(client, no_time) -> None:
    # Naming diffusers' modules and detecting a checkpoint build a model and trace nothing: the limit covers the
    # build (it used to run in the server's process with no limit at all).
    r = client.post("/api/diffusers-names", json={"preset": "sdxl-base"})
    assert r.status_code == 413
    assert r.json()["reason"] == "naming the modules ran past the limit of 0 s; try a smaller model or input"
    r = client.post("/api/checkpoint/detect", json=make_header(preset_shapes("sd1")))
    assert r.status_code == 413 and r.json()["reason"].startswith("the detection ran past the limit")


# ---- checkpoint headers -------------------------------------------------------------------------------------------
def test_deep_transformers_in_a_header_are_refused(client) -> None:
    config = dataclasses.replace(PRESETS["tiny"].config, transformer_depth=(1, 1, 100), transformer_depth_middle=100)
    r = client.post("/api/checkpoint/detect", json=make_header(shapes_of(config)))
    assert _fields(r) == (422, "shapes")
    assert "holds 100 transformer blocks, beyond any UNet this explorer builds (at most 64)" in r.json()["reason"]


def test_huge_shapes_in_a_header_are_4xx(client) -> None:
    shapes = dict(preset_shapes("tiny"))
    shapes["input_blocks.0.0.weight"] = (32, 2**62, 3, 3)
    r = client.post("/api/checkpoint/detect", json=make_header(shapes))
    # The config read from the shapes is refused by its bounds before any model is built.
    assert _fields(r) == (422, "in_channels")
    assert "over the limit" in r.json()["reason"] and len(r.json()["reason"]) < 200


@pytest.mark.parametrize(
    ("offsets", "field", "reason"),
    [
        ([[0, 4], [2, 6]], "b.data_offsets", "starts at byte 2: it overlaps the tensor before it (which ends at 4)"),
        ([[0, 4], [0, 4]], "b.data_offsets", "starts at byte 0: it overlaps the tensor before it (which ends at 4)"),
        ([[4, 8], [8, 12]], "a.data_offsets", "starts at byte 4: it leaves a gap of 4 bytes (which ends at 0)"),
        ([[0, 4], None], "b.data_offsets", "is missing while other tensors have theirs"),
    ],
)
def test_data_offsets_must_tile_the_data(client, offsets: list, field: str, reason: str) -> None:
    header = {}
    for name, o in zip("ab", offsets, strict=True):
        header[name] = {"dtype": "F16", "shape": [2], **({"data_offsets": o} if o else {})}
    r = client.post("/api/checkpoint/detect", json=header)
    assert (r.status_code, r.json()["field"], r.json()["reason"]) == (422, field, reason)


def test_tensors_out_of_order_in_the_header_are_fine(client) -> None:
    # The format orders tensors by their offsets, not by their place in the JSON: a real file's header is sorted
    # by name. The detection then goes on (and finds no UNet in these two tensors).
    header = {
        "b": {"dtype": "F16", "shape": [2], "data_offsets": [4, 8]},
        "a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
    }
    r = client.post("/api/checkpoint/detect", json=header)
    assert (r.status_code, r.json()["field"]) == (422, "header")


# ---- strict types, short errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/trace", {"preset": "tiny", "batch": "2"}, "batch"),
        ("/api/trace", {"preset": "tiny", "batch": True}, "batch"),
        ("/api/trace", {"preset": "tiny", "image_size": ["256", 256]}, "image_size.0"),
        ("/api/profile", {"preset": "tiny", "use_weights": "yes"}, "use_weights"),
        ("/api/profile", {"preset": "tiny", "repeats": 2.0}, "repeats"),
    ],
)
def test_no_coercion(client, path: str, body: dict, field: str) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_errors_quote_a_short_prefix(client) -> None:
    huge = "x" * 1_000_000
    for method, path, kwargs in (
        ("POST", "/api/trace", {"json": {"preset": huge}}),
        ("GET", f"/api/presets/{huge[:5000]}", {}),
        ("POST", "/api/trace", {"json": {"config": {**TINY, "channel_mult": huge}}}),
        ("POST", "/api/trace", {"json": {"config": {**TINY, huge: 1}}}),
        ("GET", "/api/scaling", {"params": {"preset": "sd1", "sizes": "a" * 150}}),
    ):
        r = client.request(method, path, **kwargs)
        assert 400 <= r.status_code < 500, (path, r.status_code)
        assert len(r.content) < 2500, (path, len(r.content))
        json.loads(r.content)


# ---- issue 21, items 5 and 8: inputs that answered 500 or named the wrong field -------------------------------------
def test_a_scaling_size_past_the_bound_names_sizes(client) -> None:
    r = client.get("/api/scaling?preset=sd1&sizes=1048577")
    assert _fields(r) == (422, "sizes")


def test_a_lora_alpha_past_any_float_is_422(client) -> None:
    from tests.lora_factory import lora_tensors
    from tests.lora_factory import make_header as lora_header

    header = lora_header(lora_tensors("sd1", select=lambda m: m.path.startswith("input_blocks.1.")))
    stem = next(k for k in header if k.endswith(".alpha")).removesuffix(".alpha")
    body = json.dumps({"header": header, "alphas": {stem: 10**400}})  # json writes all 401 digits
    r = client.post("/api/lora/detect", content=body, headers={"content-type": "application/json"})
    assert _fields(r) == (422, "alphas")
    assert "must be a finite number" in r.json()["reason"] and len(r.json()["reason"]) < 200
    # An image size whose latent the model cannot take names the query's field, not the latent's.
    r = client.post("/api/lora/detect?image_size=8", json=header)
    assert _fields(r) == (422, "image_size")
    assert r.json()["reason"].startswith("[8, 8] is a latent of [1, 1]: ")


def test_attention_resolutions_that_name_no_level_are_refused(client) -> None:
    r = client.post("/api/trace", json={"config": {**TINY, "attention_resolutions": [2**64]}})
    assert _fields(r) == (422, "attention_resolutions")


def test_a_cross_attention_dim_list_of_the_wrong_length_is_refused(client) -> None:
    from tests.diffusers_configs import DIFFUSERS_CONFIGS

    config = {**DIFFUSERS_CONFIGS["sd1"], "cross_attention_dim": [768] * 7}
    r = client.post("/api/trace", json={"diffusers_config": config})
    assert _fields(r) == (422, "cross_attention_dim")
    assert r.json()["reason"] == "has 7 entries; give one number, or one per block (4)"
    config["cross_attention_dim"] = [768] * 4
    assert client.post("/api/trace", json={"diffusers_config": config}).status_code == 200


def test_the_export_names_which_image_is_unreadable(client) -> None:
    import base64

    from tests.activation_fixtures import png_bytes

    good, bad = (base64.b64encode(b).decode() for b in (png_bytes(16, 16), b"not an image"))
    body = {"preset": "tiny", "sample_size": [16, 16], "export": ["unet-out"], "images": [good, bad]}
    r = client.post("/api/activations/export", json=body)
    assert _fields(r) == (422, "images.1")


@pytest.mark.parametrize("fmt", ["GIF", "BMP"])
def test_gif_and_bmp_images_are_read_as_documented(client, fmt: str) -> None:
    import base64
    import io

    from PIL import Image

    data = io.BytesIO()
    Image.new("RGB", (24, 16), (200, 30, 30)).save(data, fmt)
    body = {
        "preset": "tiny",
        "sample_size": [16, 16],
        "points": ["unet-out"],
        "image": base64.b64encode(data.getvalue()).decode(),
    }
    assert client.post("/api/activations/capture", json=body).status_code == 200
    assert f"{fmt}" in client.get("/openapi.json").text


def test_redoc_asks_no_cdn_for_its_logo(client) -> None:
    bundle = client.get("/docs/assets/redoc.standalone.js")
    assert bundle.status_code == 200 and b"cdn.redoc.ly" not in bundle.content
