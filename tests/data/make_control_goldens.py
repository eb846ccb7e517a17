"""Make the ControlNet goldens by running the original `cldm.cldm.ControlNet` (lllyasviel/ControlNet) on the CPU.

    python tests/data/make_control_goldens.py /path/to/lllyasviel/ControlNet   # needs einops and omegaconf

The checkout's `cldm/` and `ldm/` are imported as they are. `cldm/cldm.py` also imports, at its top, what only the
training and sampling wrapper `ControlLDM` uses (the LatentDiffusion class, which needs pytorch_lightning, the DDIM
sampler, torchvision's make_grid); those names are given empty placeholders here, since the ControlNet class never
touches them. Every parameter is drawn from a seeded normal (the zero convs too, so that no zero-initialised layer
hides a mistake), and the outputs are the original model's residuals for seeded inputs (fp32, eval, no grad).
Not part of the test run: the tests read the files it writes (format in tests/data/README.md).
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).parent
COMMIT = "ed85cd1e25a5ed592f7d8178495b4483de0331bf"  # the checkout these goldens were made from

# name -> cldm.ControlNet keywords (the form of a yaml's control_stage_config.params), and the input's sizes.
CASES = {
    "tiny_control_sd15": {
        "params": {
            "image_size": 32,
            "in_channels": 4,
            "hint_channels": 3,
            "model_channels": 32,
            "attention_resolutions": [2, 1],
            "num_res_blocks": 2,
            "channel_mult": [1, 2],
            "num_heads": 4,
            "use_spatial_transformer": True,
            "transformer_depth": 1,
            "context_dim": 24,
            "legacy": False,
        },
        "latent": 8,
        "tokens": 5,
    },
    "tiny_control_sd21": {
        "params": {
            "image_size": 32,
            "in_channels": 4,
            "hint_channels": 1,
            "model_channels": 32,
            "attention_resolutions": [2],
            "num_res_blocks": 1,
            "channel_mult": [1, 2, 2],
            "num_head_channels": 16,
            "use_spatial_transformer": True,
            "use_linear_in_transformer": True,
            "transformer_depth": 1,
            "context_dim": 40,
            "legacy": False,
        },
        "latent": 8,
        "tokens": 3,
    },
}


def _placeholders() -> None:
    """Empty modules for what cldm.py imports for ControlLDM only (training and sampling)."""
    for name, attrs in {
        "ldm.models.diffusion.ddpm": {"LatentDiffusion": type("LatentDiffusion", (torch.nn.Module,), {})},
        "ldm.models.diffusion.ddim": {"DDIMSampler": object},
        "torchvision": {},
        "torchvision.utils": {"make_grid": None},
    }.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module


def main(checkout: str) -> None:
    sys.path.insert(0, checkout)
    _placeholders()
    from cldm.cldm import ControlNet  # the original

    for name, case in CASES.items():
        torch.manual_seed(0)
        model = ControlNet(**case["params"]).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn_like(p) * 0.1)
        g = torch.Generator().manual_seed(1)
        size, hint_channels = case["latent"], case["params"]["hint_channels"]
        x = torch.randn(2, case["params"]["in_channels"], size, size, generator=g)
        hint = torch.rand(2, hint_channels, 8 * size, 8 * size, generator=g)
        timesteps = torch.tensor([15.0, 640.0])
        context = torch.randn(2, case["tokens"], case["params"]["context_dim"], generator=g)
        with torch.no_grad():
            outs = model(x, hint, timesteps, context)
        state = model.state_dict()
        tensors = {f"state_dict.{k}": v.contiguous() for k, v in state.items()}
        tensors |= {"input.x": x, "input.hint": hint, "input.timesteps": timesteps, "input.context": context}
        tensors |= {f"output.{i}": o.contiguous() for i, o in enumerate(outs)}
        save_file(tensors, str(HERE / f"{name}.safetensors"))
        meta = {
            "control_params": case["params"],
            "original_code": f"lllyasviel/ControlNet cldm/cldm.py ControlNet (commit {COMMIT})",
            "num_parameters": sum(p.numel() for p in model.parameters()),
            "state_dict_keys": list(state),
            "outputs": [list(o.shape) for o in outs],
        }
        (HERE / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(name, meta["num_parameters"], len(outs))


if __name__ == "__main__":
    main(sys.argv[1])
