// activation_views.js — draws one capture (the answer of POST /api/activations/capture): the feature-map previews
// (the server's PCA images), the word heat maps per token (per layer, per resolution, over all layers), the
// statistics of every point with its histogram, and each block output's cosine similarity between two timesteps.
// Only drawing: the numbers are the server's, shown as they come (statNumber's four significant digits). Every
// string goes in as text (dom.js); images are the server's base64 PNGs as data: URLs (the CSP allows img data:).

import { STAGE_COLORS } from './config.js';
import { h } from './dom.js';
import { shapeText } from './format.js';
import { loadPlotly } from './plotly-loader.js';
import { drawHistogram, statNumber } from './weights.js';

// The catalog's points before the first block (stage 'in') take the embeddings' colour, as on the U.
const stageColor = (stage) => STAGE_COLORS[stage === 'in' ? 'embed' : stage] ?? '#888';

// Heat maps in colour: the "inferno" ramp (perceptually ordered, dark = little attention), eight stops.
const RAMP = ['#000004', '#1b0c41', '#4a0c6b', '#781c6d', '#a52c60', '#cf4446', '#ed6925', '#fb9b06', '#f7d13d', '#fcffa4'];
const RAMP_RGB = RAMP.map((c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)));
const PLOT_FONT = { family: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', size: 11, color: '#2b303a' };

/** The ramp colour at t in [0, 1], as [r, g, b]. */
export function rampRgb(t) {
  const x = Math.min(1, Math.max(0, t)) * (RAMP_RGB.length - 1);
  const i = Math.min(RAMP_RGB.length - 2, Math.floor(x));
  const f = x - i;
  return RAMP_RGB[i].map((a, k) => Math.round(a + (RAMP_RGB[i + 1][k] - a) * f));
}

const pngUrl = (img) => `data:image/png;base64,${img.png}`;

/** A preview image at its own resolution, enlarged without smoothing to `size` px on its longer side. */
function previewImage(img, size, alt) {
  const scale = size / Math.max(img.width, img.height);
  return h('img', {
    class: 'act-pixels',
    src: pngUrl(img),
    alt,
    width: Math.round(img.width * scale),
    height: Math.round(img.height * scale),
  });
}

/**
 * A grey heat-map PNG (255 = the map's max) redrawn in the ramp's colours on a canvas, `size` px on its longer side.
 * canvas.__paint(stretch) redraws it: from 0 to the max (the default), or stretched from its smallest to its largest
 * value. canvas.__drawn resolves once drawn (the PNG decodes asynchronously).
 */
function heatCanvas(map, size, label) {
  const scale = size / Math.max(map.width, map.height);
  const canvas = h('canvas', {
    class: 'act-heat act-pixels',
    width: map.width,
    height: map.height,
    role: 'img',
    'aria-label': label,
    title: label,
  });
  canvas.style.width = `${Math.round(map.width * scale)}px`;
  canvas.style.height = `${Math.round(map.height * scale)}px`;
  const img = new Image();
  const drawn = new Promise((resolve) => {
    img.onload = () => {
      const ctx = canvas.getContext('2d');
      ctx.drawImage(img, 0, 0);
      const grey = ctx.getImageData(0, 0, map.width, map.height).data.filter((_, i) => i % 4 === 0);
      let lo = 255;
      let hi = 0;
      for (const v of grey) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      canvas.__paint = (stretch) => {
        const [from, span] = stretch && hi > lo ? [lo, hi - lo] : [0, 255];
        const data = ctx.createImageData(map.width, map.height);
        grey.forEach((v, k) => {
          const [r, g, b] = rampRgb((v - from) / span);
          data.data.set([r, g, b, 255], 4 * k);
        });
        ctx.putImageData(data, 0, 0);
        canvas.dataset.stretched = stretch ? 'true' : 'false';
      };
      canvas.__paint(false);
      canvas.dataset.drawn = 'true';
      resolve();
    };
    img.onerror = () => resolve();
  });
  img.src = pngUrl(map);
  canvas.__drawn = drawn;
  return canvas;
}

function percentShare(x) {
  return `${(x * 100).toFixed(x >= 0.1 ? 0 : 1)}%`;
}

// ---- feature maps -------------------------------------------------------------------------------------------

/** One tile per activation with a preview, in forward order; a click picks the point. */
function previewsSection(result, { onPick, compareT }) {
  const tiles = [];
  for (const a of result.activations) {
    if (!a.preview) continue;
    const p = a.preview;
    const what =
      p.kind === 'pca-rgb'
        ? `PC 1–3: ${p.explained_variance.map(percentShare).join(' · ')} of the variance`
        : `attention received, max ${statNumber(p.scale)}`;
    const label = `${a.name}: ${p.kind === 'pca-rgb' ? 'first three principal components as RGB' : 'attention each pixel receives'}`;
    // A heat preview is one grey channel: drawn in the heat maps' colours, so bright means more everywhere.
    const picture = p.kind === 'heat' ? heatCanvas(p, 96, label) : previewImage(p, 96, label);
    const cos = a.cosine_to_compare != null ? `cos to t=${compareT}: ${a.cosine_to_compare.toFixed(4)}` : null;
    tiles.push(
      h(
        'button',
        { type: 'button', class: 'act-tile', dataset: { point: a.name, previewKind: p.kind }, title: `${a.name}\n${a.module}\n${what}` },
        picture,
        h('span', { class: 'act-tile-name' }, a.name),
        h('span', { class: 'act-tile-sub' }, `${shapeText(a.shape)} · ${p.width}×${p.height} px`),
        h('span', { class: 'act-tile-sub' }, what),
        cos && h('span', { class: 'act-tile-sub' }, cos),
      ),
    );
  }
  const grid = h('div', { class: 'act-tiles' }, tiles);
  grid.addEventListener('click', (e) => {
    const tile = e.target.closest('.act-tile');
    if (tile) onPick(tile.dataset.point);
  });
  return h(
    'section',
    { class: 'act-part', dataset: { part: 'previews' } },
    h('h3', {}, `Feature maps (${tiles.length})`),
    h(
      'p',
      { class: 'hint' },
      'Each point at its own resolution: the first three principal components of its channels as red, green and blue ',
      '(self-attention maps: the attention each pixel receives). Click one to select it on the U and see its histogram.',
    ),
    tiles.length ? grid : h('p', { class: 'muted' }, 'None of the chosen points lies on the pixel grid.'),
  );
}

// ---- word heat maps -----------------------------------------------------------------------------------------

function heatRow(set, tokens, label, { onPick, pickName }) {
  const head = pickName
    ? h('th', { scope: 'row' }, h('button', { type: 'button', class: 'linklike', dataset: { point: pickName } }, label))
    : h('th', { scope: 'row' }, label);
  const cells = set.maps.map((m, i) => {
    const t = tokens[i];
    const text = `${label}, “${t.text}”: up to ${statNumber(m.max)} of each pixel's attention`;
    return h('td', {}, h('span', { class: 'act-heat-cell' }, heatCanvas(m, 56, text)), h('span', { class: 'act-heat-max', dataset: { value: m.max } }, statNumber(m.max)));
  });
  const tr = h('tr', { dataset: { set: set.name } }, head, cells);
  if (pickName) tr.querySelector('button').addEventListener('click', () => onPick(pickName));
  return tr;
}

/** The input image as the UNet saw it: scaled to cover the image size and centre-cropped (conditioning.fit). */
function seenImage(dataUrl, [height, width], size) {
  const scale = size / Math.max(height, width);
  const img = h('img', { class: 'act-seen', src: dataUrl, alt: 'the input image, cropped as the UNet saw it' });
  img.style.width = `${Math.round(width * scale)}px`;
  img.style.height = `${Math.round(height * scale)}px`;
  return img;
}

function heatSection(result, { onPick, image }) {
  const hm = result.heatmaps;
  const stretch = h('input', { type: 'checkbox', id: 'act-stretch' });
  const tokens = hm.tokens;
  const head = h(
    'tr',
    {},
    h('th', { scope: 'col' }, 'layers'),
    tokens.map((t) => h('th', { scope: 'col', class: 'act-token', title: t.index >= 0 ? `token ${t.index}, id ${t.id}` : 'all padding tokens, summed' }, t.text)),
  );
  const rows = [];
  if (hm.overall) rows.push(heatRow(hm.overall, tokens, `all ${hm.overall.layers.length} layers (${hm.overall.width}×${hm.overall.height})`, {}));
  for (const s of hm.resolutions) rows.push(heatRow(s, tokens, `${s.width}×${s.height}: ${s.layers.length} layer${s.layers.length === 1 ? '' : 's'}`, {}));
  const layerRows = hm.layers.map((s) => heatRow(s, tokens, s.name, { onPick, pickName: s.name }));
  const section = h(
    'section',
    { class: 'act-part', dataset: { part: 'heatmaps' } },
    h('h3', {}, 'Cross-attention heat maps'),
    h('p', { class: 'hint' }, `Per prompt token: ${hm.normalisation}. Each map is scaled to its own largest value (shown under it); bright = more attention.`),
    h('label', { class: 'inline act-stretch' }, stretch, ' stretch each map from its smallest to its largest value (shows the pattern of a nearly even map)'),
    h('div', { class: 'act-heat-scroll' }, h('table', { class: 'act-heat-table', dataset: { table: 'aggregated' } }, h('thead', {}, head), h('tbody', {}, rows))),
    h(
      'details',
      { class: 'act-layers' },
      h('summary', {}, `Per layer (${layerRows.length})`),
      h('div', { class: 'act-heat-scroll' }, h('table', { class: 'act-heat-table', dataset: { table: 'layers' } }, h('thead', {}, head.cloneNode(true)), h('tbody', {}, layerRows))),
    ),
  );
  stretch.addEventListener('change', () => {
    for (const c of section.querySelectorAll('canvas.act-heat')) c.__paint?.(stretch.checked);
  });
  if (image) {
    // The maps over the picture they were computed for (the same crop), as DAAM shows them.
    const over = h('input', { type: 'checkbox', id: 'act-over-image', checked: true });
    const sized = [result.inputs.image_size[0], result.inputs.image_size[1]];
    section.style.setProperty('--act-image', `url("${image}")`);
    section.classList.add('act-over-image');
    over.addEventListener('change', () => section.classList.toggle('act-over-image', over.checked));
    section.querySelector('.hint').after(
      h(
        'div',
        { class: 'act-seen-row' },
        seenImage(image, sized, 72),
        h('span', { class: 'muted' }, `the image as the UNet saw it: scaled to cover ${sized[1]}×${sized[0]} px and centre-cropped`),
        h('label', { class: 'inline' }, over, ' maps over the image'),
      ),
    );
  }
  return section;
}

// ---- statistics and change between timesteps ----------------------------------------------------------------

function statsSection(result, { onPick, compareT }) {
  const withCos = result.inputs.compare_timestep != null;
  const head = h(
    'tr',
    {},
    ['point', 'shape', 'mean', 'std', 'min', 'max'].map((c) => h('th', { scope: 'col' }, c)),
    withCos && h('th', { scope: 'col', title: `cosine similarity of the point at t=${result.inputs.timestep} and t=${compareT}` }, `cos t=${compareT}`),
  );
  const rows = result.activations.map((a) => {
    const s = a.stats;
    const cell = (field, v) => h('td', { class: 'num', dataset: { field, value: v ?? '' } }, statNumber(v));
    return h(
      'tr',
      { dataset: { point: a.name }, tabindex: 0 },
      h('th', { scope: 'row' }, h('code', {}, a.name)),
      h('td', {}, shapeText(a.shape)),
      cell('mean', s?.mean),
      cell('std', s?.std),
      cell('min', s?.min),
      cell('max', s?.max),
      withCos && (a.cosine_to_compare != null ? h('td', { class: 'num', dataset: { field: 'cos', value: a.cosine_to_compare } }, a.cosine_to_compare.toFixed(4)) : h('td', { class: 'num muted' }, '—')),
    );
  });
  const tbody = h('tbody', {}, rows);
  const pick = (e) => {
    const tr = e.target.closest('tr[data-point]');
    if (tr && (e.type === 'click' || e.key === 'Enter')) onPick(tr.dataset.point);
  };
  tbody.addEventListener('click', pick);
  tbody.addEventListener('keydown', pick);
  const hist = h('div', { class: 'act-hist', id: 'act-hist' });
  const histTitle = h('p', { class: 'act-hist-title muted' }, 'Pick a point to see the histogram of its values.');
  return h(
    'section',
    { class: 'act-part', dataset: { part: 'stats' } },
    h('h3', {}, 'Statistics'),
    h(
      'div',
      { class: 'act-stats-grid' },
      h('div', { class: 'act-stats-scroll' }, h('table', { class: 'act-stats' }, h('thead', {}, head), tbody)),
      h('div', { class: 'act-hist-box' }, histTitle, hist),
    ),
  );
}

/** Each block output's cosine similarity between the two timesteps, in forward order (what DeepCache relies on). */
function cosineSection(result, { catalog, compareT }) {
  const outputs = result.activations.filter((a) => a.cosine_to_compare != null && catalog.get(a.name)?.block_output);
  const el = h('div', { class: 'act-cos-chart', id: 'act-cos-chart' });
  // Cosines near 1 differ in the third decimal: on an axis from 0 every bar would look the same, so the axis is
  // zoomed, to a round start just below the lowest bar, and the page says where it starts.
  const lo = outputs.length ? Math.min(...outputs.map((a) => a.cosine_to_compare)) : 1;
  const start = Math.max(-1, Math.floor((lo - (1 - lo) * 0.15 - 1e-3) * 1000) / 1000);
  const zoomed = start > 0;
  const axisNote = zoomed
    ? h('p', { class: 'hint', dataset: { field: 'cos-axis' } }, `The axis starts at ${start.toFixed(3)}, not at 0: the bars are zoomed in to show the differences.`)
    : null;
  const section = h(
    'section',
    { class: 'act-part', dataset: { part: 'cosine' } },
    h('h3', {}, `Change between t=${result.inputs.timestep} and t=${compareT}`),
    h(
      'p',
      { class: 'hint' },
      result.inputs.latent_source === 'noise'
        ? 'Cosine similarity of each block output at the two timesteps. The latent is the same seeded noise at both (where sampling starts), so only the timestep embedding differs. '
        : 'Cosine similarity of each block output at the two timesteps: the same image noised with the same seeded noise to each. ',
      'Blocks whose output barely changes between steps are the ones caching methods such as DeepCache reuse.',
    ),
    outputs.length ? el : h('p', { class: 'muted' }, 'No block output was captured: choose “block outputs” to compare them.'),
    outputs.length ? axisNote : null,
  );
  section.__draw = async () => {
    if (!outputs.length) return;
    const Plotly = await loadPlotly();
    const trace = {
      type: 'bar',
      x: outputs.map((a) => a.name),
      y: outputs.map((a) => a.cosine_to_compare),
      marker: { color: outputs.map((a) => stageColor(catalog.get(a.name).stage)) },
      hovertemplate: '%{x}<br>cos %{y:.4f}<extra></extra>',
    };
    const layout = {
      height: 260,
      margin: { l: 52, r: 10, t: 10, b: 110 },
      font: PLOT_FONT,
      paper_bgcolor: 'rgba(0,0,0,0)',
      plot_bgcolor: '#fff',
      xaxis: { tickangle: -50, tickfont: { size: 9 }, automargin: true },
      yaxis: {
        title: { text: zoomed ? `cosine similarity (from ${start.toFixed(3)})` : 'cosine similarity' },
        range: [start, 1],
        gridcolor: '#e8ebf0',
      },
      showlegend: false,
    };
    return Plotly.react(el, [trace], layout, { displayModeBar: false, responsive: true });
  };
  return section;
}

// ---- the whole answer ---------------------------------------------------------------------------------------

function inputsLine(result) {
  const i = result.inputs;
  const latent = { vae: "the image, encoded by the checkpoint's VAE", 'stand-in': 'a stand-in: the image averaged down to the latent grid (no VAE here; not what a VAE would give)', noise: `seeded noise (seed ${i.seed})`, pixels: 'the image’s own pixels in [-1, 1], noised to the timestep (the twin has no VAE)', generation: 'x_t of the generation at this step (the twin works in pixels)' }[i.latent_source];
  const context = { 'text encoder': "the prompt, encoded by the model's own text encoder", noise: 'seeded noise in the text context’s shape', none: 'none (an unconditional model)' }[i.context_source];
  const t = i.compare_timestep != null ? `t = ${i.timestep}, compared with t = ${i.compare_timestep}` : `t = ${i.timestep}`;
  const ms = (x) => `${Math.round(x)} ms`;
  return h(
    'dl',
    { class: 'act-inputs' },
    h('div', {}, h('dt', {}, 'Timestep'), h('dd', { dataset: { field: 'timestep' } }, t)),
    h('div', {}, h('dt', {}, 'Latent'), h('dd', { dataset: { field: 'latent' } }, `${latent}, ${i.sample_size.join('×')} (image ${i.image_size.join('×')} px)`)),
    h('div', {}, h('dt', {}, 'Context'), h('dd', { dataset: { field: 'context' } }, context)),
    result.tokens.length > 0 && h('div', {}, h('dt', {}, 'Tokens'), h('dd', { dataset: { field: 'tokens' } }, result.tokens.map((t) => t.text).join(' · '))),
    h('div', {}, h('dt', {}, 'Time'), h('dd', { dataset: { field: 'timings' } }, `forward ${ms(result.timings.forward_ms)} (of which reducing ${ms(result.timings.reduce_ms)}), all ${ms(result.timings.total_ms)}`)),
  );
}

/**
 * Draw a capture into `root`. catalog: Map name → point of the catalog it was captured with; onPick(name) when a
 * point is clicked (tile, table row, layer); image: the data: URL of the image sent, if any (the heat maps can lie
 * over it). Returns {drawn: Promise, showHistogram(name)}.
 */
export function renderCapture(root, result, { catalog, onPick, image = null }) {
  const compareT = result.inputs.compare_timestep;
  const parts = [];
  if (result.random_weights) {
    parts.push(h('p', { class: 'act-banner act-banner-random', role: 'note', dataset: { banner: 'random' } }, h('strong', {}, 'Shapes, not meaning. '), result.notice ?? ''));
  } else {
    parts.push(h('p', { class: 'act-banner act-banner-real', role: 'note', dataset: { banner: 'real' } }, `Real weights: ${result.model.weights ?? 'the server’s checkpoint'}.`));
  }
  parts.push(inputsLine(result));
  parts.push(previewsSection(result, { onPick, compareT }));
  const usedImage = image && result.inputs.latent_source !== 'noise' ? image : null;
  if (result.heatmaps) parts.push(heatSection(result, { onPick, image: usedImage }));
  const stats = statsSection(result, { onPick, compareT });
  parts.push(stats);
  const cos = compareT != null ? cosineSection(result, { catalog, compareT }) : null;
  if (cos) parts.push(cos);
  root.replaceChildren(...parts);

  const byName = new Map(result.activations.map((a) => [a.name, a]));
  const histEl = stats.querySelector('.act-hist');
  const histTitle = stats.querySelector('.act-hist-title');
  function showHistogram(name) {
    for (const el of root.querySelectorAll('[data-point].current')) el.classList.remove('current');
    for (const el of root.querySelectorAll(`[data-point="${CSS.escape(name)}"]`)) el.classList.add('current');
    const a = byName.get(name);
    if (!a?.stats) return Promise.resolve();
    histTitle.textContent = `${a.name}: ${a.stats.count.toLocaleString('en-US')} values, mean ${statNumber(a.stats.mean)}, std ${statNumber(a.stats.std)}`;
    histTitle.classList.remove('muted');
    histEl.dataset.shown = name;
    return drawHistogram(histEl, a.stats);
  }
  const canvases = [...root.querySelectorAll('canvas.act-heat')].map((c) => c.__drawn);
  const drawn = Promise.all([...canvases, cos?.__draw() ?? null]);
  return { drawn, showHistogram };
}
