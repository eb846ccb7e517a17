"""Tiny models for the activation tests: a random UNet, and a whole single-file checkpoint (UNet, VAE, CLIP).

The checkpoint is written the way the original releases are laid out: the UNet under `model.diffusion_model.`,
the VAE under `first_stage_model.` in the original (ldm) names, CLIP under `cond_stage_model.transformer.` in
transformers' names. The VAE is made with diffusers and renamed to the original names here (the reverse of the
conversion under test, so a wrong name on either side fails the strict load).
"""

from __future__ import annotations

from pathlib import Path

import torch

from sdunet_core import UNetConfig, UNetModel

# SD 1.x's layout at toy width: two levels, attention at both, 64-wide text tokens.
TINY_SD1 = UNetConfig.from_ldm(
    {
        "in_channels": 4,
        "out_channels": 4,
        "model_channels": 32,
        "attention_resolutions": [1, 2],
        "num_res_blocks": 1,
        "channel_mult": [1, 2],
        "num_heads": 2,
        "use_spatial_transformer": True,
        "transformer_depth": 1,
        "context_dim": 64,
        "legacy": False,
    }
)
VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [32, 32, 32, 32],  # four levels: 8 pixels per latent pixel, as SD's VAE
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "scaling_factor": 0.18215,
}


def tiny_vae():  # type: ignore[no-untyped-def]
    from diffusers import AutoencoderKL

    torch.manual_seed(1)
    return AutoencoderKL(**VAE_CONFIG).eval()


def tiny_clip():  # type: ignore[no-untyped-def]
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    torch.manual_seed(2)
    config = CLIPTextConfig(vocab_size=49408, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=1, max_position_embeddings=77, hidden_act="quick_gelu",
                            bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)  # fmt: skip
    return CLIPTextModelWithProjection(config).eval()


def _ldm_vae_name(key: str, levels: int) -> str:
    """diffusers AutoencoderKL key -> the original ldm name."""
    parts = key.split(".")
    side = parts[0]
    if parts[1] in ("down_blocks", "up_blocks"):
        i = int(parts[2])
        level = i if side == "encoder" else levels - 1 - i
        stem = "down" if side == "encoder" else "up"
        if parts[3] == "resnets":
            rest = ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
            return f"{side}.{stem}.{level}.block.{parts[4]}.{rest}"
        sampler = "downsample" if side == "encoder" else "upsample"
        return f"{side}.{stem}.{level}.{sampler}.{'.'.join(parts[5:])}"
    if parts[1] == "mid_block":
        if parts[2] == "resnets":
            return f"{side}.mid.block_{int(parts[3]) + 1}.{'.'.join(parts[4:])}"
        rename = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}
        name = rename[parts[4]]
        return f"{side}.mid.attn_1.{name}.{parts[-1]}"
    return key.replace("conv_norm_out", "norm_out")


def write_checkpoint(path: Path) -> dict:
    """A whole tiny SD 1.x checkpoint; returns the models it holds (to compare against)."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    unet, vae, clip = UNetModel(TINY_SD1).eval(), tiny_vae(), tiny_clip()
    tensors = {f"model.diffusion_model.{k}": v for k, v in unet.state_dict().items()}
    for k, v in vae.state_dict().items():
        name = _ldm_vae_name(k, len(VAE_CONFIG["block_out_channels"]))
        if ".mid.attn_1." in name and v.dim() == 2:
            v = v[:, :, None, None]  # the original's attention projections are 1x1 convs
        tensors[f"first_stage_model.{name}"] = v
    # SD 1.x files hold transformers' CLIPTextModel: `text_model.*`, no projection.
    tensors.update(
        {f"cond_stage_model.transformer.{k}": v for k, v in clip.state_dict().items() if k.startswith("text_model.")}
    )
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return {"unet": unet, "vae": vae, "clip": clip}


def png_bytes(height: int, width: int, seed: int = 0) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
