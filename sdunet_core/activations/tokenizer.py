"""The CLIP tokenizer, offline: transformers' `CLIPTokenizer` built from CLIP's BPE merges, carried as package data.

Every SD text encoder (CLIP ViT-L/14 in SD 1.x and SDXL, OpenCLIP ViT-H/14 in SD 2.x, ViT-bigG/14 in SDXL) uses
the same 49,408-token byte-level BPE of OpenAI's CLIP. No package on the registry ships it as transformers'
`vocab.json` / `merges.txt`; the original merges file (`bpe_simple_vocab_16e6.txt.gz`, as open-clip-torch ships it,
MIT licence beside it in sdunet_core/data/clip/) is package data here, from which the vocabulary follows as in
CLIP's own tokenizer: the 256 byte symbols, the same with the end-of-word mark `</w>`, one token per merge (the
first 48,894), then `<|startoftext|>` and `<|endoftext|>`.

The file travels with the package, so an installed wheel encodes prompts with nothing installed beside it
(open-clip-torch itself depends on torchvision and timm, whose registry builds do not load beside a CPU torch).
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

MAX_TOKENS = 77  # CLIP's context: start, 75 pieces, end
VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
START, END = "<|startoftext|>", "<|endoftext|>"
_MERGES = 49152 - 256 - 2  # merges used: the vocabulary is 49,408 = 2 x 256 + 48,894 + 2


class TokenizerUnavailable(RuntimeError):
    """The CLIP vocabulary file is not installed."""


def vocab_path() -> Path:
    path = Path(__file__).parent.parent / "data" / "clip" / VOCAB_FILE
    if not path.is_file():
        raise TokenizerUnavailable(f"the CLIP vocabulary is not installed: {path} is missing")
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
