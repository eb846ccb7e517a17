"""ControlNet: a trainable copy of the UNet's encoder that reads a control image and steers the UNet's skips.

The layout is the original one (lllyasviel/ControlNet, `cldm/cldm.py`, class `ControlNet`), so its checkpoints'
`control_model.*` tensors load with strict=True once the prefix is dropped:

    time_embed            a copy of the UNet's time embedding (and `label_emb` for SDXL's pooled text and sizes)
    input_hint_block      the hint encoder: the control image, 3 x 8H x 8W, down to the latent's H x W in eight
                          3x3 convs 3 -> 16 -> 16 -> 32 -> 32 -> 96 -> 96 -> 256 (three with stride 2, SiLU
                          between) and a zero-initialised 3x3 conv to model_channels
    input_blocks          the UNet's down stage, block for block (built by the same code: model/builder.py)
    zero_convs            one zero-initialised 1x1 conv per input block
    middle_block          the UNet's middle block
    middle_block_out      a zero-initialised 1x1 conv on the middle block's output

The forward adds the encoded hint to the output of `input_blocks.0` and returns one residual per input block and
one for the middle block. The UNet (cldm's `ControlledUnetModel`) adds the last to its middle block's output and
the others, popped in reverse, to its skips before the output blocks concatenate them; `ControlLDM` scales each
by its `control_scales` entry first (13 ones for SD 1.x/2.x). `injections()` states that wiring.

diffusers' `ControlNetModel` holds the same tensors under other names (`controlnet_cond_embedding`,
`controlnet_down_blocks.N`, `controlnet_mid_block`); `keys.py` maps them.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import ConfigError, quote
from ..model.blocks import TimestepEmbedSequential, conv_nd
from ..model.builder import BlockBuilder, label_embedding, time_embedding
from ..model.config import UNetConfig
from ..model.flow import embedding_steps, run, step
from ..model.plan import BlockPlan, embedding_plans, plan_blocks
from ..model.unet import UNetModel, timestep_embedding

# The hint encoder's widths in the original (fixed there; diffusers' `conditioning_embedding_out_channels`).
HINT_BLOCK_CHANNELS = (16, 32, 96, 256)
# Keys of the original ControlNet's constructor that are not UNetConfig fields.
_CONTROL_ONLY_KEYS = ("hint_channels",)


@dataclass(frozen=True)
class ControlNetConfig:
    """A ControlNet: the UNet it copies the encoder of, and its hint encoder."""

    # The UNet whose down stage and middle block the ControlNet copies (its out_channels and up stage are unused).
    unet: UNetConfig
    # Channels of the control image (3: an RGB edge map, depth map, pose drawing, ...).
    hint_channels: int = 3
    # Widths of the hint encoder's stages; each after the first starts with a stride-2 conv, so the encoder shrinks
    # the image by 2 ** (len - 1) (8 for the original four, the SD autoencoder's factor).
    hint_block_channels: tuple[int, ...] = HINT_BLOCK_CHANNELS

    def __post_init__(self) -> None:
        if not isinstance(self.unet, UNetConfig):
            raise ConfigError("unet", f"must be a UNetConfig, got {type(self.unet).__name__}")
        if self.unet.dims != 2:
            # The hint encoder's stride-2 convs would shrink every axis, a 3D latent's depth too.
            raise ConfigError("dims", f"a ControlNet steers an image UNet (dims=2), got dims={self.unet.dims}")
        if self.unet.middle_block is None:
            # Its last output is the middle block's, added to the UNet's middle block output.
            raise ConfigError("middle_block", "a ControlNet copies the UNet's middle block; this UNet has none")
        if isinstance(self.hint_channels, bool) or not isinstance(self.hint_channels, int) or self.hint_channels < 1:
            raise ConfigError("hint_channels", f"must be a positive integer, got {quote(self.hint_channels)}")
        widths = self.hint_block_channels
        if isinstance(widths, list):
            widths = tuple(widths)
            object.__setattr__(self, "hint_block_channels", widths)
        if (
            not isinstance(widths, tuple)
            or not widths
            or len(widths) > 8
            or not all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 4096 for w in widths)
        ):
            raise ConfigError(
                "hint_block_channels",
                f"must be 1 to 8 widths between 1 and 4096, got {quote(self.hint_block_channels)}",
            )

    @property
    def hint_factor(self) -> int:
        """How many hint pixels make one latent pixel: 2 ** (stride-2 convs of the hint encoder)."""
        return 2 ** (len(self.hint_block_channels) - 1)

    @property
    def num_injections(self) -> int:
        """Outputs of the ControlNet: one per input block (input conv, res blocks, downsamplers) and the middle's."""
        u = self.unet
        return 1 + sum(u.num_res_blocks) + (u.num_levels - 1) + 1

    # ---- the original yaml form ----------------------------------------------------------------------
    @classmethod
    def from_ldm(cls, params: dict[str, Any]) -> ControlNetConfig:
        """From a yaml's `control_stage_config.params` (cldm.ControlNet's keywords), taken verbatim."""
        if not isinstance(params, dict):
            raise ConfigError("control_params", f"must be a mapping, got {type(params).__name__}")
        if "hint_channels" not in params:
            raise ConfigError("hint_channels", "is required (the ControlNet's control image channels)")
        unet = dict(params)
        hint = unet.pop("hint_channels")
        # cldm.ControlNet takes no out_channels: it has no output head. The UNet config needs one; the latent's
        # channels is what the UNet it steers predicts (and changes no tensor of the ControlNet).
        unet.setdefault("out_channels", unet.get("in_channels"))
        return cls(UNetConfig.from_ldm(unet), hint)

    def to_ldm(self) -> dict[str, Any]:
        """cldm.ControlNet's keyword arguments: the UNet's without out_channels, plus hint_channels (a ConfigError
        naming the field where the original cannot say the UNet: see `UNetConfig.ldm_unsupported`)."""
        out = {k: v for k, v in self.unet.to_ldm().items() if k not in ("out_channels", "n_embed")}
        return {**out, "hint_channels": self.hint_channels}

    def to_ldm_or_none(self) -> dict[str, Any] | None:
        return None if self.unet.ldm_unsupported() else self.to_ldm()

    def to_dict(self) -> dict[str, Any]:
        return {
            "unet": self.unet.to_dict(),
            "hint_channels": self.hint_channels,
            "hint_block_channels": list(self.hint_block_channels),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ControlNetConfig:
        if not isinstance(data, dict):
            raise ConfigError("controlnet", f"must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(str(unknown[0]), f"unknown ControlNet field(s) {quote(unknown)}")
        if "unet" not in data:
            raise ConfigError("unet", "is required")
        rest = {k: v for k, v in data.items() if k != "unet"}
        return cls(UNetConfig.from_dict(data["unet"]), **rest)


def _zero(module: nn.Module) -> nn.Module:
    """Zero every parameter, as the original's `zero_module`: a new ControlNet adds nothing until trained."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ControlNetModel(nn.Module):
    """The ControlNet of `cldm/cldm.py`: forward(x, hint, timesteps, context, y) -> one residual per injection."""

    category: ClassVar[str] = "model"
    takes_emb: ClassVar[bool] = True  # it computes the embedding from the timesteps, as the UNet does

    def __init__(self, config: ControlNetConfig) -> None:
        super().__init__()
        self.control_config = config
        self.config = cfg = config.unet
        # The encoder half of the UNet's plan: the input conv, the down stage and the middle block.
        self.plan: list[BlockPlan] = [b for b in plan_blocks(cfg) if b.stage in ("down", "mid")]
        build = BlockBuilder(cfg)
        dims = cfg.dims

        # 1. A copy of the UNet's time (and label) embedding.
        self.time_embed = time_embedding(cfg)
        label = label_embedding(cfg)
        if label is not None:
            self.label_emb = label
        # 2. The down stage, each block followed by its zero conv; registered in the original's order.
        self.input_blocks = nn.ModuleList()
        self.zero_convs = nn.ModuleList()
        for b in self.plan:
            if b.stage == "down":
                self.input_blocks.append(build.block(b))
                self.zero_convs.append(self._zero_conv(b.out_channels))
        # 3. The hint encoder: stride-2 convs shrink the control image to the latent's size.
        widths = config.hint_block_channels
        layers: list[nn.Module] = [conv_nd(dims, config.hint_channels, widths[0], 3, padding=1), nn.SiLU()]
        for cin, cout in itertools.pairwise(widths):
            layers += [conv_nd(dims, cin, cin, 3, padding=1), nn.SiLU()]
            layers += [conv_nd(dims, cin, cout, 3, padding=1, stride=2), nn.SiLU()]
        layers.append(_zero(conv_nd(dims, widths[-1], cfg.model_channels, 3, padding=1)))
        self.input_hint_block = TimestepEmbedSequential(*layers)
        # 4. The middle block and its zero conv.
        mid = next(b for b in self.plan if b.stage == "mid")
        self.middle_block = build.block(mid)
        self.middle_block_out = self._zero_conv(mid.out_channels)

    def _zero_conv(self, channels: int) -> TimestepEmbedSequential:
        return TimestepEmbedSequential(_zero(conv_nd(self.config.dims, channels, channels, 1, padding=0)))

    # ---- the model's map of itself ----------------------------------------------------------------------
    @property
    def block_map(self) -> dict[str, BlockPlan]:
        """Top-level block path -> its place: embeddings, the hint encoder, the encoder blocks, the zero convs."""
        cfg, control = self.config, self.control_config
        hint = BlockPlan(
            "input_hint_block", "down", 0, "control_hint", 1, control.hint_channels, cfg.model_channels, position=None
        )
        out = [*embedding_plans(cfg), hint]
        downs = [b for b in self.plan if b.stage == "down"]
        for i, b in enumerate(downs):
            out.append(b)
            out.append(
                dataclasses.replace(
                    b, path=f"zero_convs.{i}", category="zero_conv", in_channels=b.out_channels, attention=()
                )
            )
        mid = next(b for b in self.plan if b.stage == "mid")
        out.append(mid)
        out.append(dataclasses.replace(mid, path="middle_block_out", category="zero_conv", attention=()))
        return {b.path: b for b in out}

    @property
    def takes_context(self) -> bool:
        return self.config.use_spatial_transformer

    @property
    def skips(self) -> list[tuple[str, str]]:
        return []  # the ControlNet concatenates nothing: it returns its residuals to the UNet

    def injections(self) -> list[tuple[str, str, BlockPlan]]:
        """(zero conv, the UNet block whose output it is added to, that block's plan), in output order."""
        downs = [b for b in self.plan if b.stage == "down"]
        mid = next(b for b in self.plan if b.stage == "mid")
        return [*((f"zero_convs.{i}", b.path, b) for i, b in enumerate(downs)), ("middle_block_out", mid.path, mid)]

    # ---- forward ------------------------------------------------------------------------------------------
    def flow(self) -> list[dict[str, Any]]:
        """forward()'s steps: the embedding as the UNet makes it, the hint encoded, the encoder with a zero conv on
        every block's output (the hint joins after the input conv); the zero convs' outputs are the residuals."""
        steps, emb = embedding_steps(hasattr(self, "label_emb"))
        steps.append(run("input_hint_block", "hint", emb, "context"))
        h = "x"
        for i in range(len(self.input_blocks)):
            steps.append(run(f"input_blocks.{i}", h, emb, "context"))
            h = f"input_blocks.{i}"
            if i == 0:
                steps.append(step("add", "hinted", [h, "input_hint_block"], "add the encoded control image"))
                h = "hinted"
            steps.append(run(f"zero_convs.{i}", h, emb, "context"))
        steps.append(run("middle_block", h, emb, "context"))
        steps.append(run("middle_block_out", "middle_block", emb, "context"))
        return steps

    def forward(
        self,
        x: torch.Tensor,
        hint: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor | None = None,
        y: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """x: [B, C, H, W]; hint: [B, hint_channels, fH, fW] (f = hint_factor); -> residuals, input blocks first."""
        if (y is not None) != hasattr(self, "label_emb"):
            raise ValueError("y must be given if and only if the model is class-conditional (num_classes)")
        # 1. Time (and label) embedding, as the UNet computes it: [B] -> [B, 4 * model_channels]
        t_emb = timestep_embedding(timesteps, self.config.model_channels).to(self.time_embed[0].weight.dtype)
        emb = self.time_embed(t_emb)
        if y is not None:
            emb = emb + self.label_emb(y)
        # 2. The control image down to the latent's size: [B, hint, fH, fW] -> [B, model_channels, H, W]
        guided_hint = self.input_hint_block(hint, emb, context)
        # 3. The encoder; the hint joins after the input conv, and every block's output goes through its zero conv.
        outs = []
        h = x
        for i, (block, zero_conv) in enumerate(zip(self.input_blocks, self.zero_convs, strict=True)):
            h = block(h, emb, context)
            if i == 0:
                h = h + guided_hint
            outs.append(zero_conv(h, emb, context))
        # 4. The middle block and its zero conv.
        h = self.middle_block(h, emb, context)
        outs.append(self.middle_block_out(h, emb, context))
        return outs


def controlled_unet_forward(
    unet: UNetModel,
    x: torch.Tensor,
    timesteps: torch.Tensor,
    context: torch.Tensor | None,
    y: torch.Tensor | None,
    control: ControlNetModel,
    residuals: list[torch.Tensor],
    scales: list[float] | None = None,
) -> torch.Tensor:
    """The UNet's forward with a ControlNet's residuals added where `control.injections()` says: cldm's
    `ControlledUnetModel.forward` with `ControlLDM`'s scales, wired by our own statement of the targets.

    Each residual, times its scale, is added to its target's output as the up stage keeps it (the running tensor
    goes on unchanged), the middle one to the middle block's output; the output blocks concatenate the sums.
    """
    injections = control.injections()
    if len(residuals) != len(injections):
        raise ValueError(f"{len(residuals)} residuals for {len(injections)} injections")
    scales = scales if scales is not None else [1.0] * len(injections)
    added = {target: r * s for (_, target, _), r, s in zip(injections, residuals, scales, strict=True)}
    # 1. The UNet's own embedding.
    t_emb = timestep_embedding(timesteps, unet.config.model_channels).to(unet.time_embed[0].weight.dtype)
    emb = unet.time_embed(t_emb)
    if y is not None:
        emb = emb + unet.label_emb(y)
    # 2. Down stage: every block's output kept for the up stage, with its residual added.
    downs = [b for b in unet.plan if b.stage == "down"]
    kept: dict[str, torch.Tensor] = {}
    h = x
    for plan, block in zip(downs, unet.input_blocks, strict=True):
        h = block(h, emb, context)
        kept[plan.path] = h + added[plan.path] if plan.path in added else h
    # 3. Middle block, plus its residual.
    h = unet.middle_block(h, emb, context)
    h = h + added["middle_block"]
    # 4. Up stage: each output block concatenates the skip its plan names.
    ups = [b for b in unet.plan if b.stage == "up"]
    for plan, block in zip(ups, unet.output_blocks, strict=True):
        h = block(torch.cat([h, kept[plan.skip_from]], dim=1), emb, context)  # type: ignore[index]
    return unet.out(h.type(x.dtype))
