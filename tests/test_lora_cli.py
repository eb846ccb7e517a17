"""`sdunet-explorer inspect FILE` on real (tiny) LoRA files: the summary, the whole detection with --json, alphas
read from the file, and the FLOPs with --flops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from sdunet_core.checkpoint.header import read_header
from sdunet_core.lora import detect_lora
from sdunet_core.lora.alphas import read_alphas
from tests.lora_factory import kohya_metadata, lora_tensors, write_lora

SD1_BLOCKS = ("input_blocks.1", "output_blocks.11")


@pytest.fixture(scope="module")
def sd1_locon(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lora") / "sd1_locon.safetensors"
    tensors = lora_tensors("sd1", "locon", rank=4, select=lambda m: m.block in SD1_BLOCKS)
    write_lora(path, tensors, 8.0, kohya_metadata("sd1", rank=4, alpha=1.0, conv_dim="4", conv_alpha="1"))
    return path


def test_inspect_prints_the_summary(sd1_locon: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(sd1_locon)]) == 0
    out = capsys.readouterr().out.splitlines()
    header = read_header(sd1_locon)
    d = detect_lora(header, alphas=read_alphas(sd1_locon, header)).to_dict()
    assert out[0] == (
        "LoRA: LoCon (kohya, LyCORIS): low-rank lora_down / lora_up on attention and convolution layers "
        "(kohya keys, diffusers spelling)"
    )
    assert out[1] == "  for SD 1.x (matched against preset sd1)"
    assert f"  UNet: 31 modules, {d['unet_params']:,} parameters; text encoders: 6 modules, 55,296 parameters" in out
    assert "  rank 4 x31" in out
    # The alphas are the file's own values (8), not the metadata's (1): scale 8 / 4.
    assert "  alpha 8.0 (tensor) -> scale 2.0" in out
    blocks = out[out.index("  blocks touched (parameters); the 17-ID list names them all:") + 1 :]
    assert blocks[:3] == [
        f"    BASE {d['blocks']['BASE']:,}",
        f"    IN01 {d['blocks']['IN01']:,}",
        f"    OUT11 {d['blocks']['OUT11']:,}",
    ]


def test_inspect_json_is_the_whole_detection(sd1_locon: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(sd1_locon), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    header = read_header(sd1_locon)
    assert body == detect_lora(header, alphas=read_alphas(sd1_locon, header)).to_dict()
    assert {(m["alpha"], m["alpha_source"]) for m in [*body["modules"], *body["text_encoder"]["modules"]]} == {
        (8.0, "tensor")
    }
    assert body["block_ids"] == ["BASE", "IN01", "OUT11"] and body["unmatched"] == []


def test_inspect_flops(sd1_locon: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(sd1_locon), "--json", "--flops", "--image-size", "256", "256"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["flops"]["image_size"] == [256, 256] and body["flops"]["sample_size"] == [32, 32]
    to_q = next(m for m in body["modules"] if m["path"] == "input_blocks.1.1.transformer_blocks.0.attn1.to_q")
    assert to_q["flops"] == 2 * 32 * 32 * (320 * 4 + 4 * 320)
    assert body["flops_added"] == sum(m["flops"] for m in body["modules"])


@pytest.mark.parametrize("alpha_dtype", ["bfloat16", "float16"])
def test_sdxl_file_in_the_original_spelling(
    tmp_path: Path, alpha_dtype: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sdxl.safetensors"
    tensors = lora_tensors("sdxl-base", "lora", rank=2, select=lambda m: m.block == "middle_block")
    write_lora(path, tensors, 0.5, kohya_metadata("sdxl", rank=2, alpha=1.0), alpha_dtype=alpha_dtype)
    assert main(["inspect", str(path), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert (body["family"], body["spelling"], body["id_list"]) == ("sdxl", "original", "12")
    assert body["block_ids"] == ["BASE", "M00"] and len(body["modules"]) == 10 * 10 + 2  # 10 transformer blocks
    assert {m["scale"] for m in body["modules"]} == {0.25}
    assert {m["kohya_slot"] for m in body["modules"]} == {11}  # middle_block.1, kohya's SDXL slot 11


def test_a_torch_file_has_no_alpha_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "old.pt"
    write_lora(path, lora_tensors("sd1", "lora", select=lambda m: m.block == "input_blocks.1"), 1.0, {})
    assert main(["inspect", str(path), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert {m["alpha_source"] for m in body["modules"]} == {"unknown"} and body["family"] == "sd1"
    assert body["notes"][0].startswith("18 modules keep their alpha in the tensor data only")


def test_a_file_that_is_no_lora_still_inspects_as_a_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import DATA

    assert main(["inspect", str(DATA / "tiny_sd1.safetensors")]) == 0
    assert capsys.readouterr().out.startswith("UNet under 'state_dict.'")
