// config.js — every visual constant of the diagram in one place: sizes, gaps, colours, text widths.
// layout.js and diagram.js read from here so a change of look never means hunting through drawing code.

/** Geometry, in SVG user units (1 unit = 1 CSS pixel at zoom 1). */
export const SIZES = Object.freeze({
  margin: 24, // left and right of the whole U (the bus trunks run inside it)
  marginY: 12, // above and below it
  top: Object.freeze({ w: 116, h: 60 }), // a top-level block card: four lines
  inner: Object.freeze({ h: 48, minW: 104, maxW: 260 }), // a card inside an opened block
  padX: 14, // inside an opened block, left and right of its flow
  padBottom: 12,
  gap: 32, // vertical gap between steps of a flow: holds the arrow and its shape label
  parGap: 12, // between side-by-side cards (q, k, v)
  sideGap: 40, // between the main column and the side inputs (time embedding, context)
  sideLabel: 16, // room above a side card for the name of what feeds it
  resLane: 22, // width of the lane that carries a residual connection
  bracketGap: 8,
  opR: 11, // radius of a +, ×, ⧺ operation
  pillH: 22,
  termH: 22,
  ioH: 30, // the x and out terminals: a name over a shape
  // The U: compact, so that the whole U of SD 1.x and SDXL is readable at 1280×720
  uGapX: 10, // between blocks of a row
  uIndent: 22, // each deeper level moves inward by this much, which draws the U
  uCenterGap: 24,
  carriage: 10, // the lane above a row where the flow turns to the next row
  laneH: 11, // one skip connection's lane
  busH: 6, // one bus lane (time embedding, context)
  channelPad: 4,
  headerGap: 10,
  portDy: 30, // U-row arrows attach this far below a block's top: the middle of a closed card
});

/** Stage colours: the U reads down (blue) → middle (amber) → up (green); embeddings violet, output teal. */
export const STAGE_COLORS = Object.freeze({
  embed: '#7c5cc4',
  down: '#2f6fd0',
  mid: '#d2871f',
  up: '#23945f',
  out: '#0f8a96',
});

/** The stages in words, the one table of them (the trace's stages, sdunet_core/model/plan.py Stage, and the
 * activation catalog's `in` for the points before the first block): `name` in a legend, `row` as a table's row,
 * `inline` inside a sentence. */
export const STAGE_WORDS = Object.freeze({
  embed: { name: 'Embedding', row: 'Embeddings', inline: 'embedding' },
  in: { name: 'Input', row: 'Input', inline: 'input' },
  down: { name: 'Down stage', row: 'Down', inline: 'down' },
  mid: { name: 'Middle', row: 'Middle', inline: 'middle' },
  up: { name: 'Up stage', row: 'Up', inline: 'up' },
  out: { name: 'Output', row: 'Output', inline: 'output' },
});

/** Wire colours (also in app.css as --emb, --ctx, --skip so the legend matches). */
export const WIRE_COLORS = Object.freeze({
  flow: '#3d4451',
  skip: '#8a6fb0',
  emb: '#9b59b6',
  ctx: '#e07b24',
  res: '#6b7785',
});

/** The legend's name for each card fill class (kinds.js gives each category its class). */
export const CATEGORY_NAMES = Object.freeze({
  conv: 'convolution', linear: 'linear', norm: 'normalisation', act: 'activation', drop: 'dropout / identity',
  attn: 'attention', mlp: 'feed-forward', res: 'residual block', resample: 'resample', pool: 'pooling',
});

// Average glyph widths of the UI font as a fraction of the font size: a pure estimate, so layout stays free of
// DOM measurement (and stays testable); the cards leave a little slack for it.
const CHAR_EM = 0.58;
const MONO_EM = 0.61;

/** Estimated width of `text` at `size` px; mono for shapes and numbers. */
export function textWidth(text, size = 11, mono = false) {
  return String(text).length * size * (mono ? MONO_EM : CHAR_EM);
}

/** Text sizes used by both layout (for widths) and the stylesheet. */
export const FONT = Object.freeze({ title: 11.5, sub: 10, shape: 10, label: 9.5, io: 9.5 });

/** "Colour by" overlays: what a block's fill can show, and how the legend names it. `owner`: the view that paints
 * it and announces it (community.js paints the other external ones). */
export const OVERLAYS = Object.freeze([
  Object.freeze({ key: 'none', label: 'none' }),
  Object.freeze({ key: 'params', label: 'parameters', unit: 'count' }),
  Object.freeze({ key: 'flops', label: 'FLOPs', unit: 'count' }),
  Object.freeze({ key: 'attention', label: 'attention FLOPs (QKᵀ, AV)', unit: 'count' }),
  Object.freeze({ key: 'activation', label: 'activation memory', unit: 'bytes' }),
  Object.freeze({ key: 'time', label: 'measured time', unit: 'ms' }),
  // Painted by community.js from the server's answers (its own legends): block weights, an open LoRA.
  Object.freeze({ key: 'weights', label: 'block weights', external: true }),
  Object.freeze({ key: 'lora-rank', label: 'LoRA rank', external: true }),
  Object.freeze({ key: 'lora-params', label: 'LoRA parameters added', external: true }),
  // Painted by probes.js from a probe run on the twin: each block by its best point's held-out accuracy.
  Object.freeze({ key: 'probes', label: 'discriminative power (Probes)', external: true, owner: 'probes' }),
  // Painted by effect_overlay.js from the Knobs panel's ablation sweep: each top-level block by its SSIM drop.
  Object.freeze({ key: 'ablation', label: 'effect of removing (Knobs)', external: true, owner: 'knobs' }),
]);

/** The overlay's colour ramp, light to dark (a sequential yellow–red scale); text turns white past DARK_FROM. */
export const OVERLAY_RAMP = Object.freeze(['#fffbe0', '#fee391', '#fdb863', '#f47a3c', '#d7402b', '#9e1f3a']);
export const OVERLAY_DARK_FROM = 0.62;

/** Colour at position t (0..1) on OVERLAY_RAMP, as #rrggbb. */
export function rampColor(t) {
  const n = OVERLAY_RAMP.length - 1;
  const x = Math.max(0, Math.min(1, t)) * n;
  const i = Math.min(n - 1, Math.floor(x));
  const f = x - i;
  const rgb = (hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));
  const a = rgb(OVERLAY_RAMP[i]);
  const b = rgb(OVERLAY_RAMP[i + 1]);
  return `#${a.map((v, k) => Math.round(v + (b[k] - v) * f).toString(16).padStart(2, '0')).join('')}`;
}
