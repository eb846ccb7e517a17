"""Probes: which of the UNet's activations are discriminative, where, and when, measured on the twin (or a
checkpoint).

The question of "Not All Diffusion Model Activations Have Been Evaluated as Discriminative Features", asked of a
model that runs in seconds: every catalog point's features, pooled, fed to a linear classifier per target.

- `world`: the probe's images (one-object scenes, seeds apart from training), their labels and the split;
- `features`: the Activations view's hooks with a pooling reduction (global, and at the object's mask);
- `linear`: the classifier recipe (standardise, logistic regression), chance and the shuffled-label control;
- `run`: a request checked, the timestep sweep, typed rows;
- `checkpoint`: the same probe on the server's checkpoint (the world's pictures through its VAE);
- `correspondence`: DIFT's use: per-pixel features, cosine matches between two pictures, PCK over pairs.
"""

from .run import MAX_IMAGES, Cancelled, ProbeSpec, as_csv, check, run
from .world import PROBE_SEED_BASE, TARGETS

__all__ = ["MAX_IMAGES", "PROBE_SEED_BASE", "TARGETS", "Cancelled", "ProbeSpec", "as_csv", "check", "run"]
