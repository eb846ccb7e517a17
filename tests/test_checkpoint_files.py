"""Damaged checkpoint headers fail with their own error, never a crash; real files through the CLI (a .ckpt is
read with weights_only, objects in it are refused without running them)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import main
from sdunet_core import PRESETS, UNetModel
from sdunet_core.checkpoint.detect import CheckpointError, detect_unet, inspect_file
from sdunet_core.checkpoint.header import parse_safetensors_header, read_safetensors_header
from tests.checkpoint_headers import (
    CLIP,
    VAE,
    Shapes,
    header_bytes,
    make_header,
    preset_shapes,
)
from tests.conftest import ROOT


# ---- corrupted headers ---------------------------------------------------------------------------------------------
def _length(n: int) -> bytes:
    return struct.pack("<Q", n)


GOOD = {"w": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]}}


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (b"abc", "header_length", "a safetensors file starts with 8 length bytes, got 3 bytes"),
        (b"PK\x03\x04 this is a zip, not safetensors", "header_length", "not a plausible header length"),
        (_length(2**40) + b"{}", "header_length", "1099511627776 bytes is not a plausible header length"),
        (
            _length(100) + b'{"w": 1}',
            "header_length",
            "says 100 header bytes, but only 8 follow: the file is truncated",
        ),
        (_length(8) + b"not json", "header", "is not JSON: Expecting value at line 1 column 1"),
        (_length(2) + b"\xff\xfe", "header", "is not UTF-8 text (byte 0)"),
        (_length(5) + b"[1,2]", "header", "must be a JSON object of tensor entries, got a list"),
        (header_bytes({"w": [1]}), "w", "must be an object with dtype and shape, got a list"),
        (header_bytes({"w": {"shape": [1]}}), "w.dtype", "is missing"),
        (header_bytes({"w": {"dtype": "F16"}}), "w.shape", "is missing"),
        (header_bytes({"w": {"dtype": "F17", "shape": [1]}}), "w.dtype", "unknown dtype 'F17'"),
        (header_bytes({"w": {"dtype": "F16", "shape": [-1]}}), "w.shape", "must be a list of non-negative integers"),
        (header_bytes({"w": {"dtype": "F16", "shape": [1.5]}}), "w.shape", "must be a list of non-negative integers"),
        (header_bytes({"w": {"dtype": "F16", "shape": [True]}}), "w.shape", "must be a list of non-negative integers"),
        (header_bytes({"w": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0]}}), "w.data_offsets", "[begin, end]"),
        (
            header_bytes({"w": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 10]}}),
            "w.data_offsets",
            "[0, 10] spans 10 bytes, but F16 [2, 3] takes 12",
        ),
        (header_bytes({**GOOD, "__metadata__": {"a": 1}}), "__metadata__", "must be an object of string values"),
        (_length(200_000) + b"[" * 100_000 + b"]" * 100_000, "header", "JSON nested too deeply"),
    ],
)
def test_corrupted_headers_fail_with_their_error(data: bytes, field: str, reason: str) -> None:
    with pytest.raises(CheckpointError) as err:
        parse_safetensors_header(data)
    assert err.value.field == field
    assert reason in err.value.reason
    assert isinstance(err.value, ValueError)


def test_truncated_file_data_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    path.write_bytes(header_bytes(GOOD) + b"\0" * 11)  # one byte short of the 12 the tensor needs
    with pytest.raises(CheckpointError, match="ends at byte 12 of the data, but the file holds 11") as err:
        read_safetensors_header(path)
    assert err.value.field == "w.data_offsets"
    path.write_bytes(header_bytes(GOOD) + b"\0" * 12)
    assert read_safetensors_header(path) == GOOD


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (VAE, "first_stage_model (3 tensors, the VAE)"),
        (CLIP, "cond_stage_model (1 tensors, the text encoder), conditioner (1 tensors, the text encoders (SDXL))"),
        ({**VAE, "x": (1,)}, "the file holds first_stage_model (3 tensors, the VAE), x (1 tensors)"),
        ({}, "the file holds no tensors"),
    ],
)
def test_no_unet_is_an_error_that_says_what_the_file_holds(extra: Shapes, said: str) -> None:
    with pytest.raises(CheckpointError) as err:
        detect_unet(make_header({}, extra=extra))
    assert err.value.field == "header"
    assert err.value.reason.startswith("no UNet found: no time_embed.0.weight beside input_blocks.0.0.weight")
    assert said in err.value.reason


@pytest.mark.parametrize(
    ("edit", "field", "reason"),
    [
        ({"time_embed.0.weight": [1280]}, "time_embed.0.weight", "expected a 2-d tensor, found [1280]"),
        ({"input_blocks.0.0.weight": [300, 4, 3, 3]}, "input_blocks.0.0.weight", "makes 300 channels, but"),
        ({"input_blocks.4.0.in_layers.2.weight": [650, 320, 3, 3]}, "input_blocks.4.0.in_layers.2.weight", "multiple"),
        ({"out.2.weight": None}, "shapes", "out.2.weight is missing"),
        ({"label_emb.weight": [1280]}, "label_emb.weight", "expected a 2-d tensor"),
        ({"input_blocks.1.0.emb_layers.1.weight": [100, 1280]}, "input_blocks.1.0.emb_layers.1.weight", "320 or 640"),
    ],
)  # fmt: skip
def test_shapes_that_fit_no_unet(edit: dict, field: str, reason: str) -> None:
    shapes = dict(preset_shapes("sd1"))
    for key, shape in edit.items():
        if shape is None:
            del shapes[key]
        else:
            shapes[key] = tuple(shape)
    with pytest.raises(CheckpointError) as err:
        detect_unet(make_header(shapes, "model.diffusion_model."))
    assert (err.value.field, reason in err.value.reason) == (field, True), err.value


def test_output_blocks_that_do_not_make_a_u() -> None:
    shapes = {k: s for k, s in preset_shapes("tiny").items() if not k.startswith("output_blocks.8.")}
    with pytest.raises(CheckpointError, match="do not make a U") as err:
        detect_unet(make_header(shapes))
    assert err.value.field == "shapes"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_headers_are_reported_or_refused_never_crash(data: st.DataObject) -> None:
    shapes = dict(preset_shapes("tiny"))
    keys = sorted(shapes)
    for key in data.draw(st.lists(st.sampled_from(keys), max_size=6, unique=True)):
        action = data.draw(st.sampled_from(["drop", "reshape", "rank"]))
        if action == "drop":
            del shapes[key]
        elif action == "reshape":
            shapes[key] = tuple(max(0, d + data.draw(st.integers(-3, 3))) for d in shapes[key])
        else:
            shapes[key] = shapes[key][:-1] if len(shapes[key]) > 1 else (*shapes[key], 1)
    try:
        d = detect_unet(make_header(shapes))
    except CheckpointError:
        return
    json.dumps(d.to_dict())


# ---- real files, through the CLI -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = UNetModel(PRESETS["tiny"].config)
    return {f"model.diffusion_model.{k}": v.half() for k, v in model.state_dict().items()}


def test_cli_inspects_a_real_safetensors_file(tmp_path: Path, tiny_weights: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "tiny.safetensors"
    save_file({**tiny_weights, "first_stage_model.encoder.conv_in.weight": torch.zeros(8, 3, 3, 3)}, path)
    out = subprocess.run(
        [sys.executable, "-m", "app", "inspect", str(path), "--json"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert (d["prefix"], d["format"], d["preset"], d["exact"]) == ("model.diffusion_model.", "ldm", "tiny", True)
    assert d["config"] == PRESETS["tiny"].config.to_dict()
    assert d["other_keys"] == {"first_stage_model": 1}
    assert d["total_bytes"] == sum(t.numel() * 2 for t in tiny_weights.values())
    assert d["metadata"] == {}


def test_cli_human_output(tmp_path: Path, tiny_weights: dict, capsys: pytest.CaptureFixture) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "tiny.safetensors"
    save_file({k.removeprefix("model.diffusion_model."): v for k, v in tiny_weights.items()}, path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("UNet under '' (original names): preset tiny\n")
    assert "  model_channels: 32\n" in out
    assert "loads into UNetModel(config) with strict=True" in out


def test_ckpt_is_read_with_weights_only(tmp_path: Path, tiny_weights: dict, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": tiny_weights, "global_step": 7, "epoch": 1}, path)
    assert main(["inspect", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["preset"], d["exact"], d["bytes_by_dtype"]) == ("tiny", True, {"F16": d["total_bytes"]})
    legacy = tmp_path / "legacy.pt"  # the pre-zip format cannot be memory-mapped: read without mmap
    torch.save(tiny_weights, legacy, _use_new_zipfile_serialization=False)
    assert inspect_file(legacy).preset == "tiny"


UNPICKLED: list[str] = []


def _record_unpickling() -> None:
    UNPICKLED.append("ran")


class _Payload:
    """An object whose unpickling would run code: weights_only must refuse it before that."""

    def __reduce__(self) -> tuple:
        return (_record_unpickling, ())


def test_ckpt_with_objects_is_refused_without_running_them(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"a": torch.zeros(1)}, "callbacks": _Payload()}, path)
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "file: holds Python objects other than tensors, which are never unpickled here" in err
    assert UNPICKLED == []


def test_cli_refuses_a_file_that_is_neither(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some text, long enough")
    assert main(["inspect", str(path)]) == 2
    assert "header_length: " in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "nowhere.safetensors")]) == 2
