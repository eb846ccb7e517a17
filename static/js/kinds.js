// kinds.js — the page's one table of module kinds: for each category of the trace's closed vocabulary
// (sdunet_core/model/categories.py CATEGORIES, docs/trace-schema.md "Node categories"; tests/test_kinds.py keeps
// the keys equal) what the page calls it and how it draws it. The only JS file that knows the categories:
// a new block kind is one entry here (docs/adding-a-block-kind.md). Data, and a few pure functions of a node's facts.
//
//   short    a part's short name in a top-level card's list ("Res · Transformer ×10"), or a function of the
//            part's facts giving it; null: its class name
//   summary  what a top-level card says it holds, in place of that list; null: the list
//   words    its name in the comparison tables; null: the category itself
//   style    the card's fill class (config.js CATEGORY_NAMES names each in the legend); null: a container's or
//            a leaf's default
//   explain  a plain-language explanation for a student meeting the UNet for the first time (the details panel
//            sets it with textContent)
//   told     (optional) the explanation told with the node's own facts — (node or trace block) → text, or null to
//            fall back to `explain`: the resampling method, whether a block attends, a norm's groups
//   role     (optional) what the drawing needs to know of a kind: 'timestep' and 'label' (the embeddings the
//            header draws), 'stacked_attention' (a transformer stack with a depth) and 'attention' (one block)

export const KINDS = Object.freeze({
  model: {
    // A model with no middle block (BK-SDM Small and Tiny): the last down block feeds the first up block.
    told: (n) => ((n.children ?? []).includes('middle_block') ? null :
      'The whole denoiser. It takes a noisy latent, the timestep and the conditioning, and predicts the noise. ' +
      'The down stage shrinks the picture while adding channels and the up stage grows it back, reusing the saved ' +
      'skips so fine detail is not lost. This model has no middle block: the last down block feeds the first up block.'),
    role: null,
    short: null,
    summary: null,
    words: null,
    style: null,
    explain:
      'The whole denoiser. It takes a noisy latent, the timestep and the conditioning, and predicts the ' +
      'noise. The down stage shrinks the picture while adding channels, the middle works at the ' +
      'coarsest scale, and the up stage grows it back, reusing the saved skips so fine detail is not ' +
      'lost.',
  },
  stage: {
    short: null,
    summary: null,
    words: null,
    style: null,
    explain:
      'The list of one stage\'s top-level blocks; the forward walks it one block at a time.',
  },
  time_embedding: {
    told: null,
    role: 'timestep',
    short: null,
    summary: 'Time embedding',
    words: 'time embedding',
    style: null,
    explain:
      'Tells the network how noisy the input is. The timestep t becomes a vector of sines and cosines, ' +
      'and two Linear layers with a SiLU between turn it into a 4×-wider embedding that every ResBlock ' +
      'receives.',
  },
  label_embedding: {
    told: null,
    role: 'label',
    short: null,
    summary: 'Label / y embedding',
    words: 'label embedding',
    style: null,
    explain:
      'Extra conditioning added to the time embedding: a class label (ImageNet LDMs), the noise level ' +
      '(upscaler), or in SDXL the pooled text embedding plus the image size and crop.',
  },
  input_conv: {
    short: null,
    summary: 'Input conv',
    words: 'input conv',
    style: null,
    explain:
      'The first 3×3 convolution: lifts the few latent channels (4 for SD) to the model width.',
  },
  down_block: {
    told: (b) => (b.attention?.length > 0
      ? 'A ResBlock followed by attention: refine the features, then let every position look at the others' +
        `${b.takes_context ? ' and at the prompt' : ''}.`
      : null),
    role: null,
    short: null,
    summary: null,
    words: null,
    style: null,
    explain:
      'A ResBlock on the way down: refines features at this resolution (no attention here).',
  },
  downsample_block: {
    told: (b) => `${KINDS.downsample_block.explain} ${resampleWords(b.resample)}`.trim(),
    role: null,
    short: null,
    summary: null,
    words: null,
    style: null,
    explain:
      'Halves the height and width so the next level sees a coarser, wider view of the image. Its ' +
      'output is also saved as a skip connection.',
  },
  middle_block: {
    // Distilled variants (SSD-1B, Segmind Vega) keep a lone ResBlock at the bottom: no attention to describe.
    told: (b) => (b.attention?.length > 0 ? null
      : 'The bottom of the U, at the lowest resolution: here a single ResBlock, with no attention.'),
    role: null,
    short: null,
    summary: null,
    words: null,
    style: null,
    explain:
      'The bottom of the U, at the lowest resolution: ResBlock → attention → ResBlock. Here each ' +
      'position sees the most of the image.',
  },
  up_block: {
    // The skip is what the down stage saved at this block's resolution: fine detail near the top of the U, but at
    // the bottom (8×8 for SD at 512²) it is as coarse as the running tensor, so the text names no detail.
    told: (b) => {
      const parts = ['Concatenates the skip the down stage saved at this resolution with the running tensor, merges them with a ResBlock'];
      if (b.attention?.length > 0) parts.push(b.takes_context ? 'attends to itself and to the prompt' : 'attends to itself');
      if (b.resample) parts.push(`then doubles the resolution for the next level up. ${resampleWords(b.resample)}`);
      return `${parts.join(', ')}${b.resample ? '' : '.'}`;
    },
    role: null,
    short: null,
    summary: null,
    words: null,
    style: null,
    explain:
      'On the way up: concatenates the skip its matching down block saved at this resolution with the ' +
      'running tensor, then a ResBlock merges them.',
  },
  output_head: {
    short: null,
    summary: 'Norm · SiLU · Conv',
    words: 'output head',
    style: null,
    explain:
      'GroupNorm → SiLU → 3×3 convolution back to the latent channels: the predicted noise (or v).',
  },
  codebook_head: {
    short: null,
    summary: 'Codebook head',
    words: 'codebook head',
    style: null,
    explain:
      'GroupNorm → 1×1 convolution to one logit per codebook entry (VQ models).',
  },
  control_hint: {
    short: null,
    summary: null,
    words: null,
    style: null,
    explain:
      'ControlNet: the hint encoder. The control image (edges, depth, a pose) goes through small 3×3 ' +
      'convolutions, three of them halving the size, down to the latent\'s size; a last convolution that ' +
      'starts at zero lifts it to the model width, and it is added after the input convolution.',
  },
  zero_conv: {
    short: null,
    summary: null,
    words: null,
    style: null,
    explain:
      'ControlNet: a 1×1 convolution that starts at zero. Its output is added to the matching skip of ' +
      'the UNet (or to its middle block), so a fresh ControlNet changes nothing until training teaches ' +
      'it how.',
  },
  resblock: {
    // A resampling ResBlock (BigGAN-style up/down) says which way it goes.
    short: (n) => (n.resample ? `Res ${n.resample.direction === 'down' ? '↓' : '↑'}${n.resample.factor}` : 'Res'),
    summary: null,
    words: 'ResBlock',
    style: 'res',
    explain:
      'A residual block: two 3×3 convolutions refine the feature map, the time embedding is added in ' +
      'between (so the block knows how noisy the input is), and the input is added back at the end, so ' +
      'the block only has to learn a correction.',
  },
  spatial_transformer: {
    told: null,
    role: 'stacked_attention',
    short: 'Transformer',
    summary: null,
    words: 'SpatialTransformer',
    style: 'attn',
    explain:
      'Lets every pixel look at every other pixel and at the prompt. The feature map is normalised, ' +
      'flattened into a sequence of H·W tokens, passed through transformer blocks, reshaped back, and ' +
      'added to its input.',
  },
  transformer_block: {
    short: null,
    summary: null,
    words: 'transformer block',
    style: 'attn',
    explain:
      'One transformer layer: self-attention (pixels look at each other), cross-attention (pixels look ' +
      'at the text), then a feed-forward network. Each step normalises first and adds its result back ' +
      '(residual).',
  },
  self_attention: {
    short: null,
    summary: null,
    words: 'self-attention',
    style: 'attn',
    explain:
      'Self-attention: every position asks every other position (H·W of them) what it contains and ' +
      'mixes in what matches. It links distant parts of the image. Its cost grows with (H·W)², the ' +
      'biggest cost at high resolution.',
  },
  cross_attention: {
    short: null,
    summary: null,
    words: 'cross-attention',
    style: 'attn',
    explain:
      'Cross-attention: queries come from the image, keys and values from the context tokens. This is ' +
      'where the prompt steers each part of the picture.',
  },
  attention_block: {
    told: null,
    role: 'attention',
    short: 'Attention',
    summary: null,
    words: 'AttentionBlock',
    style: 'attn',
    explain:
      'Plain self-attention over all pixels (no text), as in the unconditional LDMs: GroupNorm, a 1×1 ' +
      'conv to q, k, v, attention, a 1×1 conv back, plus the input.',
  },
  feed_forward: {
    short: null,
    summary: null,
    words: 'feed-forward',
    style: 'mlp',
    explain:
      'A small two-layer network applied to each token on its own: widen 4× with a gated GELU, then ' +
      'project back.',
  },
  geglu: {
    short: null,
    summary: null,
    words: null,
    style: 'mlp',
    explain:
      'A gated activation: one Linear layer makes two halves; GELU of one half multiplies the other, so ' +
      'the network can switch features on and off.',
  },
  downsample: {
    told: (n) => `${KINDS.downsample.explain} ${resampleWords(n.resample)}`.trim(),
    role: null,
    short: 'Down ÷2',
    summary: null,
    words: 'Downsample',
    style: 'resample',
    explain:
      'Halves the height and width.',
  },
  upsample: {
    told: (n) => `${KINDS.upsample.explain} ${resampleWords(n.resample)}`.trim(),
    role: null,
    short: 'Up ×2',
    summary: null,
    words: 'Upsample',
    style: 'resample',
    explain:
      'Doubles the height and width.',
  },
  sequence: {
    short: null,
    summary: null,
    words: null,
    style: null,
    explain:
      'A container that runs its children one after the other.',
  },
  conv: {
    short: 'Conv',
    summary: null,
    words: null,
    style: 'conv',
    explain:
      'A convolution: every output pixel is a learned weighted sum over a small neighbourhood across ' +
      'all input channels.',
  },
  linear: {
    short: 'Linear',
    summary: null,
    words: null,
    style: 'linear',
    explain:
      'A fully connected layer: every output feature is a learned weighted sum of all input features, ' +
      'per token.',
  },
  norm: {
    told: (n) => {
      const m = n.norm;
      if (!m) return null;
      return m.type === 'group'
        ? `Group normalisation: splits the ${m.channels} channels into ${m.groups} groups and rescales each to zero mean ` +
            `and unit variance${m.affine ? ', then applies a learned scale and shift' : ''}. Works the same for any batch size.`
        : `Layer normalisation: rescales each token over its ${m.channels} channels to zero mean and unit variance.`;
    },
    role: null,
    short: null,
    summary: null,
    words: null,
    style: 'norm',
    explain:
      'Normalisation: rescales values to zero mean and unit variance, then applies a learned scale and ' +
      'shift.',
  },
  activation: {
    short: null,
    summary: null,
    words: null,
    style: 'act',
    explain:
      'An element-wise non-linearity; SiLU is x·sigmoid(x), a smooth ReLU that lets small negative ' +
      'values through.',
  },
  dropout: {
    short: null,
    summary: null,
    words: null,
    style: 'drop',
    explain:
      'Randomly zeroes values during training to prevent over-fitting; does nothing at inference.',
  },
  identity: {
    short: null,
    summary: null,
    words: null,
    style: 'drop',
    explain:
      'Passes its input through unchanged.',
  },
  pool: {
    short: null,
    summary: null,
    words: null,
    style: 'pool',
    explain:
      'Averages each window: a parameter-free way to shrink the resolution.',
  },
  embedding: {
    short: 'Embedding',
    summary: null,
    words: null,
    style: 'linear',
    explain:
      'A lookup table: turns a class index into a learned vector.',
  },
});

/** How a resampler changes the resolution (the trace's `resample.method`, schema.py ResampleMethod): a few words
 * for a card (`short`) and a sentence's worth for the explanations (`words`). */
export const RESAMPLE = Object.freeze({
  conv_stride2: { short: '3×3 conv, stride 2', words: 'a 3×3 convolution with stride 2' },
  avg_pool: { short: '2×2 average pool', words: 'a 2×2 average pool (no parameters)' },
  nearest_conv: {
    short: 'nearest ×2, 3×3 conv',
    words: 'copy each pixel into a 2×2 patch (nearest neighbour), then smooth with a 3×3 convolution',
  },
  nearest: { short: 'nearest ×2', words: 'copy each pixel into a 2×2 patch (nearest neighbour), with no convolution' },
  resblock_avg_pool: {
    short: 'ResBlock, avg pool ÷2',
    words: 'a ResBlock that average-pools both of its paths between the SiLU and the first convolution',
  },
  resblock_nearest: {
    short: 'ResBlock, nearest ×2',
    words: 'a ResBlock that upsamples both of its paths (nearest) between the SiLU and the first convolution',
  },
});

/** How this model resamples, in words: "This model uses a 3×3 convolution with stride 2." */
export function resampleWords(resample) {
  const how = resample && RESAMPLE[resample.method]?.words;
  return how ? `This model uses ${how}.` : '';
}

/** The category of `role` (the first with it), for the drawing's few kind-specific places. */
export const hasRole = (category, role) => KINDS[category]?.role === role;
