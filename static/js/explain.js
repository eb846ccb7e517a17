// explain.js — one short plain-language explanation per module, written for a student meeting the UNet for the
// first time. Keyed by the trace's node `category` (the closed vocabulary of docs/trace-schema.md); a top-level
// block's text also reads its typed facts (attention, resampling), and a few parts whose category is generic (a
// Linear that makes the queries, the ResBlock's skip) are told apart by their attribute name in the original code.
// Adding a category means adding one entry here. Plain strings: the details panel sets them with textContent.

const BY_CATEGORY = {
  model:
    'The whole denoiser. It takes a noisy latent, the timestep and the conditioning, and predicts the noise. ' +
    'The down stage shrinks the picture while adding channels, the middle works at the coarsest scale, and the ' +
    'up stage grows it back, reusing the saved skips so fine detail is not lost.',
  stage: 'The list of one stage\'s top-level blocks; the forward walks it one block at a time.',
  time_embedding:
    'Tells the network how noisy the input is. The timestep t becomes a vector of sines and cosines, and two ' +
    'Linear layers with a SiLU between turn it into a 4×-wider embedding that every ResBlock receives.',
  label_embedding:
    'Extra conditioning added to the time embedding: a class label (ImageNet LDMs), the noise level ' +
    '(upscaler), or in SDXL the pooled text embedding plus the image size and crop.',
  input_conv: 'The first 3×3 convolution: lifts the few latent channels (4 for SD) to the model width.',
  down_block: 'A ResBlock on the way down: refines features at this resolution (no attention here).',
  downsample_block:
    'Halves the height and width so the next level sees a coarser, wider view of the image. Its output is ' +
    'also saved as a skip connection.',
  middle_block:
    'The bottom of the U, at the lowest resolution: ResBlock → attention → ResBlock. Here each position sees ' +
    'the most of the image.',
  up_block:
    'On the way up: concatenates the skip its matching down block saved at this resolution with the running ' +
    'tensor, then a ResBlock merges them.',
  output_head: 'GroupNorm → SiLU → 3×3 convolution back to the latent channels: the predicted noise (or v).',
  codebook_head: 'GroupNorm → 1×1 convolution to one logit per codebook entry (VQ models).',
  control_hint:
    'ControlNet: the hint encoder. The control image (edges, depth, a pose) goes through small 3×3 ' +
    'convolutions, three of them halving the size, down to the latent\'s size; a last convolution that starts ' +
    'at zero lifts it to the model width, and it is added after the input convolution.',
  zero_conv:
    'ControlNet: a 1×1 convolution that starts at zero. Its output is added to the matching skip of the ' +
    'UNet (or to its middle block), so a fresh ControlNet changes nothing until training teaches it how.',
  resblock:
    'A residual block: two 3×3 convolutions refine the feature map, the time embedding is added in between ' +
    '(so the block knows how noisy the input is), and the input is added back at the end, so the block only ' +
    'has to learn a correction.',
  spatial_transformer:
    'Lets every pixel look at every other pixel and at the prompt. The feature map is normalised, flattened ' +
    'into a sequence of H·W tokens, passed through transformer blocks, reshaped back, and added to its input.',
  transformer_block:
    'One transformer layer: self-attention (pixels look at each other), cross-attention (pixels look at the ' +
    'text), then a feed-forward network. Each step normalises first and adds its result back (residual).',
  self_attention:
    'Self-attention: every position asks every other position (H·W of them) what it contains and mixes in ' +
    'what matches. It links distant parts of the image. Its cost grows with (H·W)², the biggest cost at high resolution.',
  cross_attention:
    'Cross-attention: queries come from the image, keys and values from the context tokens. This is where the ' +
    'prompt steers each part of the picture.',
  attention_block:
    'Plain self-attention over all pixels (no text), as in the unconditional LDMs: GroupNorm, a 1×1 conv to ' +
    'q, k, v, attention, a 1×1 conv back, plus the input.',
  feed_forward: 'A small two-layer network applied to each token on its own: widen 4× with a gated GELU, then project back.',
  geglu:
    'A gated activation: one Linear layer makes two halves; GELU of one half multiplies the other, so the ' +
    'network can switch features on and off.',
  downsample: 'Halves the height and width.',
  upsample: 'Doubles the height and width.',
  sequence: 'A container that runs its children one after the other.',
  conv: 'A convolution: every output pixel is a learned weighted sum over a small neighbourhood across all input channels.',
  linear: 'A fully connected layer: every output feature is a learned weighted sum of all input features, per token.',
  norm: 'Normalisation: rescales values to zero mean and unit variance, then applies a learned scale and shift.',
  activation: 'An element-wise non-linearity; SiLU is x·sigmoid(x), a smooth ReLU that lets small negative values through.',
  dropout: 'Randomly zeroes values during training to prevent over-fitting; does nothing at inference.',
  identity: 'Passes its input through unchanged.',
  pool: 'Averages each window: a parameter-free way to shrink the resolution.',
  embedding: 'A lookup table: turns a class index into a learned vector.',
};

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

const RESAMPLE_WORDS = {
  conv_stride2: 'a 3×3 convolution with stride 2',
  avg_pool: 'a 2×2 average pool (no parameters)',
  nearest_conv: 'copy each pixel into a 2×2 patch (nearest neighbour), then smooth with a 3×3 convolution',
  nearest: 'copy each pixel into a 2×2 patch (nearest neighbour), with no convolution',
  resblock_avg_pool: 'a ResBlock that average-pools both of its paths between the SiLU and the first convolution',
  resblock_nearest: 'a ResBlock that upsamples both of its paths (nearest) between the SiLU and the first convolution',
};

/** How this model resamples, in words: "This model uses a 3×3 convolution with stride 2." */
export function resampleWords(resample) {
  const how = resample && RESAMPLE_WORDS[resample.method];
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
