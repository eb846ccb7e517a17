"""The parts of a single-file SD checkpoint besides the UNet: the VAE and the text encoder(s), built offline.

Where they sit (CompVis / Stability single-file checkpoints):
- the VAE under `first_stage_model.` (original names), built as diffusers' `AutoencoderKL` through diffusers'
  own single-file key conversion (`convert_ldm_vae_checkpoint`), with a config read from the shapes;
- SD 1.x: CLIP ViT-L/14 under `cond_stage_model.transformer.` (transformers' names), the last layer's output
  after the final LayerNorm (`FrozenCLIPEmbedder`, layer "last");
- SD 2.x: OpenCLIP ViT-H/14 under `cond_stage_model.model.` (open_clip names), the penultimate layer's output
  after the final LayerNorm (`FrozenOpenCLIPEmbedder`, layer "penultimate");
- SDXL base: CLIP ViT-L/14 under `conditioner.embedders.0.transformer.` (penultimate layer, no final norm) and
  OpenCLIP ViT-bigG/14 under `conditioner.embedders.1.model.` (penultimate layer, no final norm; its pooled and
  projected end token joins the size conditioning in `y`); the refiner has bigG alone under `embedders.0.model.`.
Every encoder is transformers' `CLIPTextModel(WithProjection)` with a config read from the shapes; OpenCLIP
weights are renamed by diffusers' `convert_open_clip_checkpoint`. Prompts are padded to 77 tokens with the end
token for the OpenAI CLIP and with 0 for OpenCLIP, as the original embedders do; there is no padding mask.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..imports import from_diffusers
from .tokenizer import END, MAX_TOKENS, pad, tokenize

log = logging.getLogger(__name__)

SINGLE_FILE = "diffusers.loaders.single_file_utils"  # diffusers' own key conversion for single-file checkpoints
VAE_PREFIX = "first_stage_model."
# The latent scale of each family's VAE (the yaml's scale_factor).
SD_VAE_SCALE, SDXL_VAE_SCALE = 0.18215, 0.13025


@dataclass(frozen=True)
class EncoderSpec:
    prefix: str
    names: str  # "transformers" or "open_clip"
    layer: str  # "last" or "penultimate"
    final_norm: bool
    pooled: bool  # SDXL's bigG: the projected end token goes into y


# Known places, in the order their outputs are concatenated into the context.
ENCODER_LAYOUTS: dict[str, tuple[EncoderSpec, ...]] = {
    "sd1": (EncoderSpec("cond_stage_model.transformer.", "transformers", "last", True, False),),
    "sd2": (EncoderSpec("cond_stage_model.model.", "open_clip", "penultimate", True, False),),
    "sdxl": (
        EncoderSpec("conditioner.embedders.0.transformer.", "transformers", "penultimate", False, False),
        EncoderSpec("conditioner.embedders.1.model.", "open_clip", "penultimate", False, True),
    ),
    "sdxl-refiner": (EncoderSpec("conditioner.embedders.0.model.", "open_clip", "penultimate", False, True),),
}
_ANCHOR = {"transformers": "text_model.embeddings.token_embedding.weight", "open_clip": "token_embedding.weight"}


def read_prefixed(path: Path, prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint whose names start with one of `prefixes` (full names kept)."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys() if k.startswith(prefixes)}  # noqa: SIM118
    obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    return {k: v for k, v in obj.items() if k.startswith(prefixes)}


def checkpoint_keys(path: Path) -> list[str]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return list(f.keys())
    return list(read_prefixed(path, ("",)))


def detect_encoders(keys: set[str]) -> tuple[str | None, tuple[EncoderSpec, ...]]:
    """(family, encoders) found in a checkpoint's keys; (None, ()) for a UNet-only file."""
    for family, specs in ENCODER_LAYOUTS.items():
        if all(spec.prefix + _ANCHOR[spec.names] in keys for spec in specs):
            # SDXL base's embedders.0 is CLIP-L: do not take it for the refiner's bigG, or the reverse.
            if family == "sdxl-refiner" and "conditioner.embedders.1.model.token_embedding.weight" in keys:
                continue
            return family, specs
    return None, ()


class TextEncoder:
    """One CLIP text tower: prompt ids -> hidden states of the chosen layer (and the pooled projection)."""

    def __init__(self, spec: EncoderSpec, tensors: dict[str, torch.Tensor]) -> None:
        convert_ldm_clip_checkpoint = from_diffusers("convert_ldm_clip_checkpoint", SINGLE_FILE)
        convert_open_clip_checkpoint = from_diffusers("convert_open_clip_checkpoint", SINGLE_FILE)
        from transformers import CLIPTextConfig, CLIPTextModelWithProjection

        self.spec = spec
        if spec.names == "transformers":
            local = {k[len(spec.prefix) :]: v for k, v in tensors.items()}
            state = convert_ldm_clip_checkpoint({"cond_stage_model.transformer." + k: v for k, v in local.items()})
            original_layers = len({k.split(".")[3] for k in state if k.startswith("text_model.encoder.layers.")})
            act = "quick_gelu"  # OpenAI's CLIP
        else:
            original_layers = len({k.split(".")[2] for k in tensors if k.startswith(spec.prefix + "transformer.")})
            state = _convert_open_clip(convert_open_clip_checkpoint, tensors, spec.prefix)
            act = "gelu"  # OpenCLIP's ViT-H and ViT-bigG
        loaded_layers = len({k.split(".")[3] for k in state if k.startswith("text_model.encoder.layers.")})
        emb = state["text_model.embeddings.token_embedding.weight"]
        width = emb.shape[1]
        config = CLIPTextConfig(
            vocab_size=emb.shape[0],
            hidden_size=width,
            intermediate_size=state["text_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
            num_hidden_layers=loaded_layers,
            num_attention_heads=width // 64,  # every CLIP text tower has 64-wide heads
            max_position_embeddings=state["text_model.embeddings.position_embedding.weight"].shape[0],
            hidden_act=act,
            projection_dim=state["text_projection.weight"].shape[0] if "text_projection.weight" in state else width,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407 if spec.names == "transformers" else 0,
        )
        # WithProjection for every tower: its keys are `text_model.*` (as in the checkpoints) in transformers 4 and 5
        # alike; towers without a pooled output leave the projection unused.
        model = CLIPTextModelWithProjection(config)
        state = {k: v for k, v in state.items() if not k.endswith("position_ids")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if not spec.pooled:
            missing = [k for k in missing if k != "text_projection.weight"]
        if missing or unexpected:
            raise ValueError(f"text encoder under {spec.prefix}: missing {missing[:4]}, unexpected {unexpected[:4]}")
        self.model = model.eval().float()
        # The layer of the original tower whose output is used: hidden_states[i] is the output of layer i.
        self.layer = original_layers if spec.layer == "last" else original_layers - 1
        self.pad_id = config.pad_token_id

    @torch.inference_mode()
    def encode(self, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(hidden [1, 77, width], pooled [1, projection] or None) for unpadded ids."""
        x = torch.tensor([pad(ids, self.pad_id)])
        out = self.model(input_ids=x, output_hidden_states=True)
        hidden = out.hidden_states[self.layer]
        if self.spec.final_norm:
            hidden = self.model.text_model.final_layer_norm(hidden)
        pooled = out.text_embeds if self.spec.pooled else None
        return hidden.float(), pooled


def _convert_open_clip(convert, tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    """diffusers' OpenCLIP renaming; it reads the width from the projection or from `text_model.config`."""

    class _Width:  # the converter only asks the model for its config's hidden size
        class config:
            hidden_size = tensors[prefix + "token_embedding.weight"].shape[1]

    return convert(_Width, tensors, prefix=prefix)


class TextConditioner:
    """A checkpoint's text encoder(s): prompt -> context [1, 77, Σ widths] (and the pooled vector for SDXL)."""

    def __init__(self, family: str, encoders: list[TextEncoder]) -> None:
        self.family = family
        self.encoders = encoders

    def encode(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids, _texts = tokenize(prompt)
        if len(ids) > MAX_TOKENS:
            raise ValueError(f"the prompt has {len(ids)} tokens, over CLIP's limit of {MAX_TOKENS}")
        hidden, pooled = [], None
        for enc in self.encoders:
            h, p = enc.encode(ids)
            hidden.append(h)
            pooled = p if p is not None else pooled
        return torch.cat(hidden, dim=-1), pooled


def load_vae(tensors: dict[str, torch.Tensor], scaling_factor: float):  # type: ignore[no-untyped-def]
    """diffusers' AutoencoderKL from `first_stage_model.*` tensors, its config read from the shapes."""
    AutoencoderKL = from_diffusers("AutoencoderKL")
    convert_ldm_vae_checkpoint = from_diffusers("convert_ldm_vae_checkpoint", SINGLE_FILE)

    local = {k[len(VAE_PREFIX) :]: v for k, v in tensors.items()}
    levels = sorted({int(k.split(".")[2]) for k in local if k.startswith("encoder.down.")})
    blocks = {int(k.split(".")[4]) for k in local if k.startswith("encoder.down.0.block.")}
    config = {
        "in_channels": local["encoder.conv_in.weight"].shape[1],
        "out_channels": local["decoder.conv_out.weight"].shape[0],
        "down_block_types": ["DownEncoderBlock2D"] * len(levels),
        "up_block_types": ["UpDecoderBlock2D"] * len(levels),
        "block_out_channels": [local[f"encoder.down.{i}.block.0.conv1.weight"].shape[0] for i in levels],
        "layers_per_block": len(blocks),
        "latent_channels": local["quant_conv.weight"].shape[0] // 2,  # the encoder gives mean and log-variance
        "norm_num_groups": 32,  # as in every released SD VAE (not visible in the shapes)
        "scaling_factor": scaling_factor,
    }
    vae = AutoencoderKL(**config)
    vae.load_state_dict(convert_ldm_vae_checkpoint(tensors, config), strict=True)
    return vae.eval().float()


@dataclass
class Components:
    """What a checkpoint holds besides the UNet; either part may be missing (a UNet-only file)."""

    family: str | None
    vae: object | None  # diffusers AutoencoderKL
    text: TextConditioner | None


def load_components(path: str | Path) -> Components:
    """The VAE and text encoder(s) of a single-file checkpoint, or None for the parts it lacks."""
    path = Path(path)
    keys = set(checkpoint_keys(path))
    family, specs = detect_encoders(keys)
    prefixes = tuple(s.prefix for s in specs)
    has_vae = f"{VAE_PREFIX}encoder.conv_in.weight" in keys
    tensors = read_prefixed(path, (*prefixes, VAE_PREFIX) if has_vae else prefixes) if prefixes or has_vae else {}
    text = None
    if specs:
        encoders = [TextEncoder(s, {k: v for k, v in tensors.items() if k.startswith(s.prefix)}) for s in specs]
        text = TextConditioner(family or "", encoders)
    vae = None
    if has_vae:
        scale = SDXL_VAE_SCALE if family in ("sdxl", "sdxl-refiner") else SD_VAE_SCALE
        vae = load_vae({k: v for k, v in tensors.items() if k.startswith(VAE_PREFIX)}, scale)
    log.info("components of %s: family %s, vae %s, text encoders %d", path.name, family, has_vae, len(specs))
    return Components(family, vae, text)


__all__ = ["END", "Components", "TextConditioner", "TextEncoder", "detect_encoders", "load_components", "load_vae"]
