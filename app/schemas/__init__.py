"""The API's request and response models, one module per part of the API: `trace` (traces, presets, profiles,
comparisons), `activations`, `names`, `lora`, `twin`, `knobs`, `probes`."""
