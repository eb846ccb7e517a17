"""Activations: the catalog of every named point of the UNet, and one real forward captured at those points.

- `catalog`: the points in the study's naming scheme with module paths, shapes and who reads them;
- `capture`: forward hooks that reduce what they see as it passes (statistics, PCA previews, attention maps);
- `conditioning` and `components`: the image, the timestep and the prompt turned into the UNet's inputs;
- `export`: chosen activations written as `.safetensors`;
- `interventions`: the twin's knobs run on the server's checkpoint (its text encoder, the same loop, its VAE).
"""

from .catalog import KIND_TEXT, ActivationPoint, catalog, plan_points, resolve_points
from .references import GROUPS, OUTPUT_KINDS, STUDY_PICKS

__all__ = [
    "GROUPS",
    "KIND_TEXT",
    "OUTPUT_KINDS",
    "STUDY_PICKS",
    "ActivationPoint",
    "catalog",
    "plan_points",
    "resolve_points",
]
