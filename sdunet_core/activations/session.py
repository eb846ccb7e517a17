"""One capture from start to end: a model (real or seeded random weights), its inputs, the hooked forward(s).

`Explorer` holds a UNet and, with a checkpoint, its VAE and text encoder(s); `Explorer.run(spec)` checks the
request (every failure is an `InputError` naming the field), builds the latent, context and y, runs the forward
with a `Capture` on the chosen points, optionally a second forward at another timestep for the cosine similarity
of each point, and returns the results with the word heat maps.

Without a checkpoint the UNet has seeded random weights (PyTorch's default initialisation after
`torch.manual_seed(weights_seed)`) and the context is seeded noise: the pictures then show shapes and the flow of
the network, not what a trained model sees. `Outcome.random_weights` says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..model.config import UNetConfig
from ..model.unet import UNetModel
from ..presets import PRESETS
from . import conditioning as cond
from .capture import Capture, ForwardInputs, PointResult, run_forward
from .catalog import ActivationPoint, catalog, resolve_points
from .components import Components, load_components
from .heatmaps import HeatMaps, build
from .tokenizer import MAX_TOKENS, tokenize

RANDOM_NOTICE = (
    "Random weights: this UNet has seeded random weights and the text context is noise, so these pictures show "
    "the shapes and the flow of the network, not what a trained model sees. Start the server with --weights FILE "
    "for real activations."
)


@dataclass
class CaptureSpec:
    points: list[str]
    timestep: int
    compare_timestep: int | None = None
    prompt: str = ""
    seed: int = 0
    image: bytes | torch.Tensor | None = None  # encoded bytes, or an RGB tensor [3, H, W] in [0, 1]
    sample_size: tuple[int, int] | None = None  # latent size; None: the preset's, or 64 x 64
    keep: list[str] = field(default_factory=list)  # points whose full tensors are returned (export)
    latent: torch.Tensor | None = None  # the UNet's input itself (a generation's x_t), instead of image or noise
    previews: bool = True
    max_image_side: int = 4096


@dataclass
class Outcome:
    points: list[ActivationPoint]
    results: dict[str, PointResult]
    heatmaps: HeatMaps | None
    tokens: list[dict]
    inputs: dict
    random_weights: bool
    notice: str | None
    timings: dict[str, float]
    kept: frozenset[str] = frozenset()


def latent_factor(config: UNetConfig) -> int:
    """Image pixels per latent pixel: the preset's when the config is one, else SD's 8."""
    return next((p.latent_factor for p in PRESETS.values() if p.config == config), 8)


class Explorer:
    """A UNet ready for captures, with the checkpoint's VAE and text encoder(s) when it has them."""

    def __init__(
        self, config: UNetConfig, unet: UNetModel, components: Components | None, random_weights: bool
    ) -> None:
        self.config = config
        self.unet = unet.eval()
        self.components = components or Components(None, None, None)
        self.random_weights = random_weights
        # The text side: CLIP's 77 tokens, unless the model brings its own tokenizer (the twin).
        self.context_tokens = MAX_TOKENS
        self.tokenize = tokenize
        self.latent_source = None  # what a picture becomes without a VAE: a stand-in latent, or (twin) the pixels
        self.schedule: dict | None = None  # how an image is noised: SD's schedule unless a model states its own
        self.default_sample = (64, 64)  # the latent size when a capture names none
        self.latent_factor = latent_factor(config)

    def to(self, device: str | torch.device) -> Explorer:
        """Run the UNet on `device` (a GPU, say); the VAE and text encoders stay on the CPU, they run once."""
        self.unet.to(device)
        return self

    @classmethod
    def random(cls, config: UNetConfig, weights_seed: int = 0) -> Explorer:
        torch.manual_seed(weights_seed)
        return cls(config, UNetModel(config), None, True)

    @classmethod
    def twin(cls) -> Explorer:
        """The shipped twin: trained weights, its own word tokenizer and text encoder, pixel space (no VAE)."""
        from ..twin.capture import twin_explorer

        return twin_explorer(cls)

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> Explorer:
        from ..checkpoint.weights import WeightsFile

        weights = WeightsFile(path)
        with torch.device("meta"):
            unet = UNetModel(weights.config)
        unet.load_state_dict({k: v.float() for k, v in weights.state_dict().items()}, strict=True, assign=True)
        return cls(weights.config, unet, load_components(path), False)

    # ---- inputs -----------------------------------------------------------------------------------------
    def _context(self, prompt: str, image_size: tuple[int, int], seed: int) -> tuple[torch.Tensor | None, ...]:
        cfg = self.config
        text = self.components.text
        gen = torch.Generator().manual_seed(seed + 1)
        if text is not None and cfg.use_spatial_transformer:
            context, pooled = text.encode(prompt)
            if context.shape[-1] != cfg.context_width:
                raise cond.InputError(
                    "weights",
                    f"the text encoders give {context.shape[-1]} wide tokens, the UNet takes {cfg.context_width}",
                )
            y = cond.class_y(cfg)
            if cfg.num_classes == "sequential":
                if pooled is None:
                    raise cond.InputError("weights", "the UNet takes a pooled text vector that no encoder gives")
                y = cond.sdxl_y(pooled, image_size, cfg.adm_in_channels or 0)
            return context, y, "text encoder"
        context = (
            torch.randn(1, self.context_tokens, cfg.context_width, generator=gen)
            if cfg.use_spatial_transformer
            else None
        )
        y = cond.class_y(cfg)
        if cfg.num_classes == "sequential":
            y = torch.randn(1, cfg.adm_in_channels or 0, generator=gen)
        return context, y, ("noise" if context is not None else "none")

    def conditioning(self, prompt: str, image_size: tuple[int, int], seed: int = 0) -> tuple[torch.Tensor | None, ...]:
        """(context, y, where the context came from) for a prompt, as a capture builds them (batch 1)."""
        return self._context(prompt, image_size, seed)

    def _image(self, spec: CaptureSpec) -> torch.Tensor | None:
        if spec.image is None:
            return None
        if isinstance(spec.image, torch.Tensor):
            return spec.image
        return cond.decode_image(spec.image, spec.max_image_side)

    # ---- the capture ------------------------------------------------------------------------------------
    def check(self, spec: CaptureSpec) -> tuple[tuple[int, int], list[ActivationPoint], frozenset[str], list]:
        """Sizes, points and prompt checked up front: (sample size, points, kept names, tokens)."""
        for name, t in (("timestep", spec.timestep), ("compare_timestep", spec.compare_timestep)):
            if t is not None and not 0 <= t < cond.TIMESTEPS:
                raise cond.InputError(
                    name, f"{t} is out of range: SD's schedule has timesteps 0 to {cond.TIMESTEPS - 1}"
                )
        sample = spec.sample_size or self.default_sample
        try:
            self.config.check_sample_size(tuple(sample))
        except ValueError as exc:
            raise cond.InputError("image_size", getattr(exc, "reason", str(exc))) from None
        points_all = catalog(self.config, tuple(sample), self.context_tokens)
        try:
            points = resolve_points(points_all, [*spec.points, *spec.keep])
            keep = frozenset(p.name for p in resolve_points(points_all, spec.keep))
        except KeyError as exc:
            field_name = "export" if exc.args[0] in spec.keep else "points"
            raise cond.InputError(field_name, f"unknown point {exc.args[0]!r}; see the catalog for the names") from None
        if not points:
            raise cond.InputError("points", "choose at least one point (a name from the catalog or a group)")
        ids, texts = self.tokenize(spec.prompt)
        if len(ids) > self.context_tokens:
            raise cond.InputError(
                "prompt", f"{len(ids)} tokens (start and end included), over CLIP's limit of {MAX_TOKENS}"
            )
        return tuple(sample), points, keep, [ids, texts]

    def run(self, spec: CaptureSpec) -> Outcome:
        started = time.perf_counter()
        sample, points, keep, (ids, texts) = self.check(spec)
        image = self._image(spec)
        image_size = (sample[0] * self.latent_factor, sample[1] * self.latent_factor)
        if image is not None:
            image = cond.fit(image, *image_size)
        if spec.latent is not None:
            latent = cond.LatentChoice(spec.latent, None, spec.latent, "generation")
        else:
            latent = cond.make_latent(
                self.config, sample, image, self.components.vae, spec.seed, spec.timestep, self.schedule
            )
        if self.latent_source and latent.source == "stand-in":
            latent.source = self.latent_source
        context, y, context_source = self._context(spec.prompt, image_size, spec.seed)
        inputs = ForwardInputs(latent.x, spec.timestep, context, y)
        self.last_inputs = inputs  # what the last capture fed the UNet (the bench reruns it without hooks)
        prepared = time.perf_counter()
        with Capture(self.unet, points, sample, keep=keep, previews=spec.previews, compare=spec.compare_timestep
                     is not None) as cap:  # fmt: skip
            run_forward(self.unet, inputs)
            forward_done = time.perf_counter()
            reduce_s = cap.reduce_seconds
            if spec.compare_timestep is not None:
                cap.start_comparison()
                x2 = latent.x
                if latent.x0 is not None:
                    x2 = cond.add_noise(latent.x0, latent.noise, spec.compare_timestep, self.schedule)
                run_forward(self.unet, inputs.at(spec.compare_timestep, x2))
        finished = time.perf_counter()
        heat = build(list(cap.results.values()), ids, texts, sample) if any(
            r.heat is not None for r in cap.results.values()
        ) else None  # fmt: skip
        return Outcome(
            points=points,
            results=cap.results,
            heatmaps=heat,
            tokens=[{"index": i, "id": ids[i], "text": texts[i]} for i in range(len(ids))],
            inputs={
                "timestep": spec.timestep,
                "compare_timestep": spec.compare_timestep,
                "seed": spec.seed,
                "prompt": spec.prompt,
                "image_size": list(image_size),
                "sample_size": list(sample),
                "latent_source": latent.source,
                "context_source": context_source,
            },
            random_weights=self.random_weights,
            notice=RANDOM_NOTICE if self.random_weights else None,
            timings={
                "prepare_ms": (prepared - started) * 1e3,
                "forward_ms": (forward_done - prepared) * 1e3,
                "reduce_ms": reduce_s * 1e3,
                "total_ms": (finished - started) * 1e3,
            },
            kept=keep,
        )
