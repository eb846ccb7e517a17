"""The `sdunet-explorer` subcommands beyond `serve` and `trace` (app/cli.py holds the parser): inspecting a LoRA,
training and describing the twin, probing activations, and exporting the static site."""
