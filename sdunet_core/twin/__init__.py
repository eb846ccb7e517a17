"""The twin: a small text-to-image model with SD's architecture, trained here on a world the project draws.

- `world`: the drawn world (coloured shapes on a coloured ground), its captions and masks, from a seed;
- `reader`: the attribute reader, which reads a picture's objects from its pixels (the judge of the gates);
- `text`: the word tokenizer and the small CLIP-like text encoder;
- `model`: the `twin` preset's UNet with the text encoder, SD's schedule, the shipped weights;
- `sampling`: the denoising loop with diffusers' DDIM and Euler steps, every step's x_t, ε̂ and x̂₀ kept;
- `train`: the training recipe (`sdunet-explorer train-twin`);
- `evaluate`: the gates measured on generated pictures (prompt fidelity, word heat maps against masks).
"""

from .model import PRESET, Twin, shipped, weights_shipped
from .sampling import SAMPLERS, Generation, generate

__all__ = ["PRESET", "SAMPLERS", "Generation", "Twin", "generate", "shipped", "weights_shipped"]
