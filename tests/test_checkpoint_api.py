"""POST /api/checkpoint/detect: whole JSON bodies for a header of each kind, and a 4xx naming the field for every
kind of bad input (never a 500)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.routes.checkpoint import MAX_BODY_BYTES
from sdunet_core import PRESETS
from sdunet_core.checkpoint.detect import detect_unet
from tests.checkpoint_headers import VAE, diffusers_shapes, header_bytes, make_header, preset_shapes, without_offsets

URL = "/api/checkpoint/detect"


def _err(field: str | None, reason: str) -> dict:
    return {"detail": f"{field}: {reason}" if field else reason, "field": field, "reason": reason}


def _post(client, body: bytes | dict):  # type: ignore[no-untyped-def]
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    return client.post(URL, content=content, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("header", "preset", "key_format"),
    [
        (make_header(preset_shapes("sd1"), "model.diffusion_model.", extra=VAE), "sd1", "ldm"),
        (make_header(preset_shapes("sd2-v"), "model.diffusion_model."), "sd2", "ldm"),
        (make_header(diffusers_shapes("sdxl-base")), "sdxl-base", "diffusers"),
        (make_header(preset_shapes("ldm-churches")), "ldm-churches", "ldm"),
    ],
    ids=["sd1", "sd2-v", "sdxl-diffusers", "ldm-churches"],
)
def test_detect_returns_the_whole_detection(client, header: dict, preset: str, key_format: str) -> None:
    r = _post(client, header)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body == json.loads(json.dumps(detect_unet(header).to_dict()))
    assert (body["preset"], body["format"], body["exact"]) == (preset, key_format, True)
    assert body["config"] == PRESETS[preset].config.to_dict()
    assert body["ldm_params"] == PRESETS[preset].config.to_ldm()


def test_sd2_and_sd2_v_are_both_named(client) -> None:
    body = _post(client, make_header(preset_shapes("sd2"))).json()
    assert (body["preset"], body["matching_presets"]) == ("sd2", ["sd2", "sd2-v"])


def test_the_files_first_bytes_work_as_the_body(client) -> None:
    header = make_header(preset_shapes("tiny"), "model.diffusion_model.")
    data = header_bytes(header) + b"\0" * 64  # the first bytes of a file: length, header, some data
    r = _post(client, data)
    assert r.status_code == 200
    assert r.json() == _post(client, header).json()


def test_tensor_names_with_markup_come_back_as_plain_data(client) -> None:
    evil = '<img src=x onerror="alert(1)">'
    header = without_offsets(make_header(preset_shapes("tiny"), "model.diffusion_model."))
    header[f"model.diffusion_model.{evil}"] = {"dtype": "F16", "shape": [1]}
    header[f"{evil}.weight"] = {"dtype": "F16", "shape": [1]}
    header["__metadata__"] = {evil: evil * 100}
    r = _post(client, header)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["unexpected"] == [evil]
    assert body["other_keys"] == {evil: 1}
    assert body["metadata"] == {evil: (evil * 100)[:200]}  # echoed cut short


@pytest.mark.parametrize(
    ("body", "status", "field", "reason"),
    [
        (b"", 400, "body", "is empty; send the safetensors header JSON"),
        (b"not json", 400, "body", "is not JSON: Expecting value at line 1 column 1"),
        (b'{"a": ', 400, "body", "is not JSON: Expecting value at line 1 column 7"),
        (b"\xff\xfe{}", 400, "body", "is not UTF-8 text (byte 0)"),
        (b"[" * 50_000 + b"]" * 50_000, 400, "body", "is not a safetensors header: JSON nested too deeply"),
        (b"[1, 2]", 422, "header", "must be a JSON object of tensor entries, got a list"),
        (b'"a string"', 422, "header", "must be a JSON object of tensor entries, got a string"),
        ({"w": {"dtype": "F16"}}, 422, "w.shape", "is missing"),
        ({"w": {"dtype": "Q4", "shape": [1]}}, 422, "w.dtype", None),
        ({"w": {"dtype": "F16", "shape": [2], "data_offsets": [0, 3]}}, 422, "w.data_offsets", None),
        ({"__metadata__": [], "w": {"dtype": "F16", "shape": [1]}}, 422, "__metadata__", None),
        (make_header({}, extra=VAE), 422, "header", None),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(client, body, status: int, field: str, reason: str | None) -> None:  # type: ignore[no-untyped-def]
    r = _post(client, body)
    assert r.status_code == status, r.text
    got = r.json()
    assert got == _err(field, reason if reason is not None else got["reason"])
    assert got["reason"]


def test_a_vae_alone_says_so(client) -> None:
    r = _post(client, make_header({}, extra=VAE))
    assert r.json()["reason"].endswith("the file holds first_stage_model (3 tensors, the VAE)")


def test_shapes_that_fit_no_unet_are_422(client) -> None:
    shapes = dict(preset_shapes("sd1"))
    shapes["input_blocks.0.0.weight"] = (300, 4, 3, 3)
    r = _post(client, make_header(shapes, "model.diffusion_model."))
    assert r.status_code == 422
    assert r.json() == _err(
        "input_blocks.0.0.weight",
        "makes 300 channels, but the time embedding reads model_channels=320: shapes fit no UNet",
    )


def test_too_large_body_is_413(client) -> None:
    too_large = _err("body", f"is larger than {MAX_BODY_BYTES} bytes; send the safetensors header, not the file")
    r = _post(client, b" " * (MAX_BODY_BYTES + 1))
    assert (r.status_code, r.json()) == (413, too_large)

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(MAX_BODY_BYTES // 2**20 + 1):
            yield b" " * 2**20

    r = client.post(URL, content=chunks(), headers={"content-type": "application/json"})
    assert (r.status_code, r.json()) == (413, too_large)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=30), inner, max_size=4),
    max_leaves=20,
)
_entry = st.fixed_dictionaries(
    {"dtype": st.sampled_from(["F16", "F32", "BF16", "I64"]), "shape": st.lists(st.integers(0, 2048), max_size=4)}
)
_names = st.sampled_from(
    [
        "time_embed.0.weight",
        "input_blocks.0.0.weight",
        "input_blocks.1.0.in_layers.2.weight",
        "input_blocks.1.0.emb_layers.1.weight",
        "middle_block.1.proj_in.weight",
        "out.2.weight",
        "conv_in.weight",
        "time_embedding.linear_1.weight",
        "label_emb.weight",
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(body=_json | st.dictionaries(_names, _entry, max_size=9))
def test_never_a_500(client, body) -> None:  # type: ignore[no-untyped-def]
    r = _post(client, json.dumps(body).encode())
    assert r.status_code in (200, 400, 422), r.text
    if r.status_code != 200:
        assert set(r.json()) == {"detail", "field", "reason"}
