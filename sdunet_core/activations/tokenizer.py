"""The CLIP tokenizer, offline: transformers' `CLIPTokenizer` built from the BPE merges that open-clip-torch ships.

Every SD text encoder (CLIP ViT-L/14 in SD 1.x and SDXL, OpenCLIP ViT-H/14 in SD 2.x, ViT-bigG/14 in SDXL) uses
the same 49,408-token byte-level BPE of OpenAI's CLIP. No package on the registry ships it as transformers'
`vocab.json` / `merges.txt`; open-clip-torch ships the original merges file (`bpe_simple_vocab_16e6.txt.gz`), from
which the vocabulary follows as in CLIP's own tokenizer: the 256 byte symbols, the same with the end-of-word
mark `</w>`, one token per merge (the first 48,894), then `<|startoftext|>` and `<|endoftext|>`.

open-clip-torch is installed without its dependencies (torchvision and timm, whose registry builds do not load
beside a CPU torch): only its data file is read, the package itself is never imported.
"""

from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

MAX_TOKENS = 77  # CLIP's context: start, 75 pieces, end
VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
START, END = "<|startoftext|>", "<|endoftext|>"
_MERGES = 49152 - 256 - 2  # merges used: the vocabulary is 49,408 = 2 x 256 + 48,894 + 2


class TokenizerUnavailable(RuntimeError):
    """The CLIP vocabulary file is not installed."""


def vocab_path() -> Path:
    spec = importlib.util.find_spec("open_clip")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerUnavailable(
            "the CLIP vocabulary is not installed: pip install --no-deps open-clip-torch (only its data file is read)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / VOCAB_FILE
    if not path.is_file():
        raise TokenizerUnavailable(f"{path} is missing from the installed open-clip-torch")
    return path


@lru_cache(maxsize=1)
def clip_tokenizer():  # type: ignore[no-untyped-def]
    """transformers' CLIPTokenizer with CLIP's vocabulary, padding to 77 with the end token (as SD 1.x does)."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    with gzip.open(vocab_path()) as f:
        lines = f.read().decode("utf-8").split("\n")
    merges = lines[1 : _MERGES + 1]  # the first line is a version header
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges] + [START, END]
    return CLIPTokenizer(
        vocab={token: i for i, token in enumerate(vocab)},
        merges=[tuple(m.split()) for m in merges],
        model_max_length=10**6,  # we check the length ourselves, with a message naming the field
    )


@lru_cache(maxsize=256)
def tokenize(prompt: str) -> tuple[list[int], list[str]]:
    """(ids, token texts) of the prompt with start and end tokens, not truncated nor padded."""
    tok = clip_tokenizer()
    ids = tok(prompt, add_special_tokens=True, truncation=False)["input_ids"]
    return list(ids), [tok.decode([i]) for i in ids]


def pad(ids: list[int], pad_id: int) -> list[int]:
    """Ids padded to MAX_TOKENS with `pad_id` (the end token for transformers' CLIP, 0 for OpenCLIP)."""
    return ids + [pad_id] * (MAX_TOKENS - len(ids))
