// explain.js — one short plain-language explanation per module, written for a student meeting the UNet for the
// first time: a category's own text is its `explain` in kinds.js; a top-level block's text also reads its typed
// facts (attention, resampling), and a few parts whose category is generic (a Linear that makes the queries, the
// ResBlock's skip) are told apart by their attribute name in the original code. Plain strings: the details panel
// sets them with textContent.

import { KINDS, RESAMPLE } from './kinds.js';

const BY_CATEGORY = Object.fromEntries(Object.entries(KINDS).map(([c, k]) => [c, k.explain]));

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

/** How this model resamples, in words: "This model uses a 3×3 convolution with stride 2." */
export function resampleWords(resample) {
  const how = resample && RESAMPLE[resample.method]?.words;
  return how ? `This model uses ${how}.` : '';
}

/** A top-level block, told with its own facts: attention, resampling. */
function blockText(block) {
  const attn = block.attention?.length > 0;
  const res = block.resample;
  if (block.category === 'down_block' && attn) {
    return 'A ResBlock followed by attention: refine the features, then let every position look at the others' +
      `${block.takes_context ? ' and at the prompt' : ''}.`;
  }
  if (block.category === 'up_block') {
    // The skip is what the down stage saved at this block's resolution: fine detail near the top of the U, but at
    // the bottom (8×8 for SD at 512²) it is as coarse as the running tensor, so the text names no detail.
    const parts = ['Concatenates the skip the down stage saved at this resolution with the running tensor, merges them with a ResBlock'];
    if (attn) parts.push(block.takes_context ? 'attends to itself and to the prompt' : 'attends to itself');
    if (res) parts.push(`then doubles the resolution for the next level up. ${resampleWords(res)}`);
    return `${parts.join(', ')}${res ? '' : '.'}`;
  }
  if (block.category === 'downsample_block') return `${BY_CATEGORY.downsample_block} ${resampleWords(res)}`.trim();
  // Distilled variants (SSD-1B, Segmind Vega) keep a lone ResBlock at the bottom: no attention to describe.
  if (block.category === 'middle_block' && !attn) return MIDDLE_WITHOUT_ATTENTION;
  return BY_CATEGORY[block.category];
}

const MIDDLE_WITHOUT_ATTENTION =
  'The bottom of the U, at the lowest resolution: here a single ResBlock, with no attention.';
// A model with no middle block (BK-SDM Small and Tiny): the down stage hands its last output straight to the up stage.
const MODEL_WITHOUT_MIDDLE =
  'The whole denoiser. It takes a noisy latent, the timestep and the conditioning, and predicts the noise. ' +
  'The down stage shrinks the picture while adding channels and the up stage grows it back, reusing the saved ' +
  'skips so fine detail is not lost. This model has no middle block: the last down block feeds the first up block.';

/** The explanation for a trace node; `block` is its entry in trace.blocks when it is a top-level block. */
export function explain(node, block = null) {
  if (!node) return '';
  if (block) return blockText(block) ?? 'A block of the UNet.';
  if (node.category === 'model' && !(node.children ?? []).includes('middle_block')) return MODEL_WITHOUT_MIDDLE;
  if (BY_NAME[node.name]) return BY_NAME[node.name];
  if (node.category === 'downsample' || node.category === 'upsample') {
    return `${BY_CATEGORY[node.category]} ${resampleWords(node.resample)}`.trim();
  }
  if (node.category === 'norm' && node.norm) {
    const n = node.norm;
    return n.type === 'group'
      ? `Group normalisation: splits the ${n.channels} channels into ${n.groups} groups and rescales each to zero mean ` +
          `and unit variance${n.affine ? ', then applies a learned scale and shift' : ''}. Works the same for any batch size.`
      : `Layer normalisation: rescales each token over its ${n.channels} channels to zero mean and unit variance.`;
  }
  return BY_CATEGORY[node.category] ?? 'A module of the UNet.';
}
