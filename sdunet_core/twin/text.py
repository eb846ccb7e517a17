"""The twin's text side: a word tokenizer over the world's grammar and a small text encoder of CLIP's kind.

SD's text encoder is CLIP's: token and position embeddings, transformer layers with a causal mask (each token sees
itself and the tokens before it), a final layer norm; the UNet cross-attends to every token of the last hidden
state. The twin's encoder is the same, small (64 wide, 2 layers, 4 heads) and over 30 tokens instead of 49,408:
the world's words and `<pad>`, `<start>`, `<end>`. A caption is `<start> words <end>` padded to 16 tokens
(SD: 77) with `<pad>`; the empty caption, which classifier-free guidance uses, is `<start> <end>` and padding.
"""

from __future__ import annotations

import torch
from torch import nn

from .world import SPECIAL, words

MAX_TOKENS = 16
WIDTH = 64
LAYERS = 2
HEADS = 4


class UnknownWord(ValueError):
    """A caption word the twin's vocabulary does not have."""

    def __init__(self, word: str) -> None:
        # The message lists the words, so that every place that reports it (API, capture, CLI) says what to use.
        super().__init__(f"'{word}' is not in the twin's vocabulary; its words: {' '.join(words())}")
        self.word = word


class WordTokenizer:
    """Captions to token ids: one token per word (lower case), with `<start>`, `<end>` and `<pad>`."""

    def __init__(self) -> None:
        self.tokens: list[str] = [*SPECIAL, *words()]
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.pad, self.start, self.end = (self.ids[t] for t in SPECIAL)

    def split(self, text: str) -> list[str]:
        return text.lower().split()

    def check(self, text: str) -> list[str]:
        """The caption's words; UnknownWord for the first word not in the vocabulary, ValueError when too long."""
        found = self.split(text)
        for word in found:
            if word not in self.ids:
                raise UnknownWord(word)
        if len(found) > MAX_TOKENS - 2:
            raise ValueError(f"{len(found)} words; a caption takes at most {MAX_TOKENS - 2}")
        return found

    def encode(self, text: str) -> list[int]:
        """Ids of `<start> words <end>` padded to MAX_TOKENS."""
        ids = [self.start, *(self.ids[w] for w in self.check(text)), self.end]
        return ids + [self.pad] * (MAX_TOKENS - len(ids))

    def tokens_of(self, text: str) -> list[str]:
        """The token texts the UNet attends to (padding included), as the heat maps name them."""
        return [self.tokens[i] for i in self.encode(text)]

    def batch(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([self.encode(t) for t in texts], dtype=torch.long)


class TextEncoder(nn.Module):
    """CLIP's text transformer, small: embeddings, pre-norm causal transformer layers, final layer norm."""

    def __init__(self, vocab_size: int, width: int = WIDTH, layers: int = LAYERS, heads: int = HEADS) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.position_embedding = nn.Parameter(torch.zeros(MAX_TOKENS, width))
        layer = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=4 * width, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.final_layer_norm = nn.LayerNorm(width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding, std=0.01)
        # CLIP's causal mask: token i sees tokens 0..i (so padding never changes the words' states).
        self.register_buffer("causal", torch.triu(torch.full((MAX_TOKENS, MAX_TOKENS), float("-inf")), 1), False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, 16] -> the context the UNet cross-attends to, [B, 16, 64]."""
        x = self.token_embedding(ids) + self.position_embedding
        x = self.layers(x, mask=self.causal, is_causal=True)
        return self.final_layer_norm(x)
