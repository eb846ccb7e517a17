// explain.js — one short plain-language explanation per block, written for a student meeting the UNet for the
// first time. Looked up by the module's attribute name first (skip_connection, to_q, ...), then its role in the
// trace (cross_attention, in_layers, ...), then its class name. Plain strings: the details panel sets them with
// textContent.

const BY_NAME = {
  skip_connection:
    'The shortcut of the residual block. When the block keeps the channel count it is the identity (x passes ' +
    'unchanged); when the channels change it is a 1×1 convolution so x can still be added to the result.',
  h_upd: 'Resamples the main path of a resampling ResBlock between its SiLU and its convolution.',
  x_upd: 'Resamples the shortcut of a resampling ResBlock so it matches the main path when they are added.',
  proj_in:
    'Mixes the channels before attention (a 1×1 convolution, or a Linear layer in SD 2.x and SDXL). It does ' +
    'not look at neighbouring pixels.',
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
  op: 'The actual downsampling: a 3×3 convolution with stride 2, or a 2×2 average pool.',
  proj: 'One Linear layer that makes both halves of the GEGLU: values and gates (2 × 4 × the width).',
};

const BY_ROLE = {
  time_embedding:
    'Tells the network how noisy the input is. The timestep t becomes a vector of sines and cosines, and two ' +
    'Linear layers with a SiLU between turn it into a 4×-wider embedding that every ResBlock receives.',
  label_embedding:
    'Extra conditioning added to the time embedding: a class label (ImageNet LDMs), the noise level ' +
    '(upscaler), or in SDXL the pooled text embedding plus the image size and crop.',
  input_conv: 'The first 3×3 convolution: lifts the few latent channels (4 for SD) to the model width.',
  down_block: 'A ResBlock on the way down: refines features at this resolution (no attention here).',
  down_block_attn:
    'A ResBlock followed by a SpatialTransformer: refine the features, then let every position look at the ' +
    'others and at the prompt.',
  downsample:
    'Halves the height and width so the next level sees a coarser, wider view of the image. Its output is ' +
    'also saved as a skip connection.',
  middle_block:
    'The bottom of the U, at the lowest resolution: ResBlock → attention → ResBlock. Here each position sees ' +
    'the most of the image.',
  up_block:
    'On the way up: concatenates the skip from its matching down block (fine detail) with the running tensor ' +
    '(context), then a ResBlock merges them.',
  up_block_attn:
    'Concatenates a skip from the down stage, merges it with a ResBlock, then attends to itself and to the prompt.',
  up_block_upsample: 'Concatenates a skip, merges it with a ResBlock, then doubles the resolution.',
  up_block_attn_upsample:
    'Concatenates a skip, ResBlock, SpatialTransformer, then doubles the resolution for the next level up.',
  output: 'GroupNorm → SiLU → 3×3 convolution back to the latent channels: the predicted noise (or v).',
  in_layers: 'GroupNorm → SiLU → 3×3 convolution: the first half of a ResBlock, possibly changing the channels.',
  emb_layers:
    'SiLU → Linear: projects the time embedding to this block\'s channels so it can be added to every pixel.',
  out_layers: 'GroupNorm → SiLU → Dropout → 3×3 convolution: the second half of a ResBlock.',
  self_attention:
    'Self-attention: every position asks every other position (H·W of them) what it contains and mixes in ' +
    'what matches. It links distant parts of the image. Its cost grows with (H·W)², the biggest cost at high resolution.',
  cross_attention:
    'Cross-attention: queries come from the image, keys and values from the text tokens. This is where the ' +
    'prompt steers each part of the picture.',
  transformer_blocks: 'The stack of transformer blocks inside a SpatialTransformer (1 in SD 1.x, up to 10 in SDXL).',
  attention_output: 'Linear → Dropout after attention: mixes the heads back together.',
  feed_forward_net: 'GEGLU → Dropout → Linear: widen, gate, and project back.',
};

const BY_KIND = {
  UNetModel:
    'The whole denoiser. It takes a noisy latent, the timestep and the conditioning, and predicts the noise. ' +
    'The down stage shrinks the picture while adding channels, the middle works at the coarsest scale, and the ' +
    'up stage grows it back, reusing the saved skips so fine detail is not lost.',
  ResBlock:
    'A residual block: two 3×3 convolutions refine the feature map, the time embedding is added in between ' +
    '(so the block knows how noisy the input is), and the input is added back at the end, so the block only ' +
    'has to learn a correction.',
  SpatialTransformer:
    'Lets every pixel look at every other pixel and at the prompt. The feature map is normalised, flattened ' +
    'into a sequence of H·W tokens, passed through transformer blocks, reshaped back, and added to its input.',
  BasicTransformerBlock:
    'One transformer layer: self-attention (pixels look at each other), cross-attention (pixels look at the ' +
    'text), then a feed-forward network. Each step normalises first and adds its result back (residual).',
  CrossAttention:
    'Attention: each query is compared with every key (a dot product, divided by √d and soft-maxed), and the ' +
    'result is a weighted average of the values. Several heads do this in parallel on slices of the channels.',
  FeedForward:
    'A small two-layer network applied to each token on its own: widen 4× with a gated GELU, then project back.',
  GEGLU:
    'A gated activation: one Linear layer makes two halves; GELU of one half multiplies the other, so the ' +
    'network can switch features on and off.',
  AttentionBlock:
    'Plain self-attention over all pixels (no text), as in the unconditional LDMs: GroupNorm, a 1×1 conv to ' +
    'q, k, v, attention, a 1×1 conv back, plus the input.',
  Downsample: 'Halves the height and width: a 3×3 convolution with stride 2 (or a 2×2 average pool).',
  Upsample: 'Doubles the height and width: copy each pixel into a 2×2 patch, then smooth with a 3×3 convolution.',
  TimestepEmbedSequential:
    'A container that runs its blocks in order, handing the time embedding to ResBlocks and the context to ' +
    'transformers.',
  Conv2d:
    'A convolution: every output pixel is a learned weighted sum over a small neighbourhood (3×3, or just the ' +
    'pixel for 1×1) across all input channels.',
  Conv1d: 'A convolution over a flattened sequence of positions; with kernel 1 it mixes channels per position.',
  Linear: 'A fully connected layer: every output feature is a learned weighted sum of all input features, per token.',
  GroupNorm:
    'Group normalisation: splits the channels into 32 groups and rescales each to zero mean and unit variance, ' +
    'then applies a learned scale and shift. Works the same for any batch size.',
  GroupNorm32: 'Group normalisation (computed in float32 for stability) over 32 channel groups, with a learned scale and shift.',
  LayerNorm: 'Layer normalisation: rescales each token over its channels to zero mean and unit variance.',
  SiLU: 'The SiLU (swish) activation x·sigmoid(x): a smooth ReLU that lets small negative values through.',
  Dropout: 'Randomly zeroes values during training to prevent over-fitting; does nothing at inference.',
  Identity: 'Passes its input through unchanged.',
  AvgPool2d: 'Averages each 2×2 patch: a parameter-free way to halve the resolution.',
  Embedding: 'A lookup table: turns a class index into a learned vector.',
  Sequential: 'A container that runs its children one after the other.',
  ModuleList: 'A list of modules that the forward walks through one by one.',
};

/** The explanation for a trace node (falls back from name to role to kind). */
export function explain(node) {
  if (!node) return '';
  if (node.path === '') return BY_KIND.UNetModel;
  if (node.role === 'self_attention' || node.role === 'cross_attention') return BY_ROLE[node.role];
  return BY_NAME[node.name] ?? BY_ROLE[node.role] ?? BY_KIND[node.kind] ?? 'A module of the UNet.';
}

/** Classes whose Python source the server shows (ours, not PyTorch's). */
export const OUR_KINDS = new Set([
  'UNetModel', 'ResBlock', 'SpatialTransformer', 'BasicTransformerBlock', 'CrossAttention', 'FeedForward', 'GEGLU',
  'AttentionBlock', 'Downsample', 'Upsample', 'TimestepEmbedSequential', 'GroupNorm32',
]);
