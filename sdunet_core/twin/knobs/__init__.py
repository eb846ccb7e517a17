"""Knobs: interventions on the twin's running UNet, and what they change in its pictures.

- `specs`: the intervention kinds, checked (`parse_knobs`, `KnobError` naming the field);
- `hooks`: the forward hooks and the wrapped (cached) forward that apply them, one run at a time;
- `pair`: a baseline and its knob run as two lanes of one batch (or one after the other for the cache), a step at
  a time, on any UNet with a caption encoder (the twin's, or a checkpoint's: sdunet_core.activations.interventions);
- `run`: the loop with the knobs, the baseline beside it, the comparison;
- `metrics`: MSE, SSIM and the difference picture;
- `sweep`: each block (or skip) removed in turn over seeds and captions: the effect per block.
"""

from .metrics import mse, ssim
from .run import Run, compare, experiment, sample
from .specs import KINDS, Knob, KnobError, parse_knobs

__all__ = ["KINDS", "Knob", "KnobError", "Run", "compare", "experiment", "mse", "parse_knobs", "sample", "ssim"]
