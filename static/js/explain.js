// explain.js — one short plain-language explanation per module, written for a student meeting the UNet for the
// first time: a category's own text is its `explain` (or `told`, with the node's facts) in kinds.js, and a few
// parts whose category is generic (a Linear that makes the queries, the ResBlock's skip) are told apart by their
// attribute name in the original code. Plain strings: the details panel
// sets them with textContent.

import { KINDS, resampleWords } from './kinds.js';

export { resampleWords };

// Parts whose category is generic (linear, conv, sequence) but whose job in the forward is specific.
const BY_NAME = {
  skip_connection:
    'The shortcut of the residual block. When the block keeps the channel count it is the identity (x passes ' +
    'unchanged); when the channels change it is a 1×1 convolution so x can still be added to the result.',
  h_upd: 'Resamples the main path of a resampling ResBlock between its SiLU and its convolution.',
  x_upd: 'Resamples the shortcut of a resampling ResBlock so it matches the main path when they are added.',
  proj_in: 'Mixes the channels before attention. It does not look at neighbouring pixels.',
  proj_out:
    'Projects the attention result back to the block\'s channels. In the original code it starts at zero, so ' +
    'a fresh transformer block begins as "do nothing" and learns to add detail.',
  to_q: 'Turns each position into a query: "what am I looking for?" A Linear layer without bias.',
  to_k: 'Turns each source position or token into a key: "what do I contain?" Queries are compared with keys.',
  to_v: 'Turns each source position or token into a value: the information that is passed on when a key matches.',
  to_out: 'Mixes the heads back together (Linear) after attention; the Dropout is inactive at inference.',
  norm1: 'LayerNorm before self-attention: rescales each token so the attention sees well-behaved numbers.',
  norm2: 'LayerNorm before cross-attention.',
  norm3: 'LayerNorm before the feed-forward network.',
  qkv: 'One 1×1 convolution that makes queries, keys and values at once (3× the channels).',
  proj: 'One Linear layer that makes both halves of the GEGLU: values and gates (2 × 4 × the width).',
  in_layers: 'GroupNorm → SiLU → 3×3 convolution: the first half of a ResBlock, possibly changing the channels.',
  emb_layers:
    'SiLU → Linear: projects the time embedding to this block\'s channels so it can be added to every pixel.',
  out_layers: 'GroupNorm → SiLU → Dropout → 3×3 convolution: the second half of a ResBlock.',
  transformer_blocks: 'The stack of transformer blocks inside a SpatialTransformer (1 in SD 1.x, up to 10 in SDXL).',
};

/** The explanation for a trace node; `block` is its entry in trace.blocks when it is a top-level block. A kind's
 * `told` reads the node's own facts (kinds.js); a part with a specific job is told by its attribute name. */
export function explain(node, block = null) {
  if (!node) return '';
  if (!block && BY_NAME[node.name]) return BY_NAME[node.name];
  const subject = block ?? node;
  const kind = KINDS[subject.category];
  const told = kind?.told?.(subject);
  if (told) return told;
  return kind?.explain ?? (block ? 'A block of the UNet.' : 'A module of the UNet.');
}
