// charts.js — FLOPs and parameters per top-level block, coloured by stage, with measured time overlaid after a
// profile. Plotly is loaded on the first chart (plotly-loader.js), after the U is drawn;
// Plotly.react both creates and updates a chart, so redraws keep zoom state and cost little.

import { STAGE_COLORS, STAGE_WORDS, WIRE_COLORS } from './config.js';
import { loadPlotly } from './plotly-loader.js';

const FONT = { family: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', size: 12, color: '#2b303a' };

/** Short axis labels: input_blocks.4 → "in 4", output_blocks.11 → "up 11". */
export function shortName(path) {
  let m = /^input_blocks\.(\d+)$/.exec(path);
  if (m) return `in ${m[1]}`;
  m = /^output_blocks\.(\d+)$/.exec(path);
  if (m) return `up ${m[1]}`;
  return { time_embed: 't-emb', label_emb: 'y-emb', middle_block: 'mid', out: 'out' }[path] ?? path;
}

function barTraces(ix, key, scale, unit) {
  const byStage = new Map();
  for (const b of ix.blocks) {
    const n = ix.nodes.get(b.path);
    if (!n) continue;
    if (!byStage.has(b.stage)) byStage.set(b.stage, { x: [], y: [], customdata: [], text: [] });
    const t = byStage.get(b.stage);
    const total = ix.totals[key];
    t.x.push(shortName(b.path));
    t.y.push((n[key] ?? 0) / scale);
    t.customdata.push(b.path);
    t.text.push(total ? `${(((n[key] ?? 0) / total) * 100).toFixed(1)}%` : '');
  }
  return [...byStage].map(([stage, t]) => ({
    type: 'bar',
    name: STAGE_WORDS[stage]?.name ?? stage,
    x: t.x,
    y: t.y,
    customdata: t.customdata,
    text: t.text,
    textposition: 'none',
    marker: { color: STAGE_COLORS[stage] ?? '#888' },
    hovertemplate: `%{customdata}<br>%{y:.3~f} ${unit} (%{text})<extra></extra>`,
  }));
}

function timeTrace(ix) {
  if (ix.totals.time == null) return null;
  const x = [];
  const y = [];
  const customdata = [];
  for (const b of ix.blocks) {
    const n = ix.nodes.get(b.path);
    if (!n || n.time_ms == null) continue;
    x.push(shortName(b.path));
    y.push(n.time_ms);
    customdata.push(b.path);
  }
  return {
    type: 'scatter',
    mode: 'lines+markers',
    name: `measured time (${ix.trace.device})`,
    x,
    y,
    customdata,
    yaxis: 'y2',
    line: { color: WIRE_COLORS.flow, width: 1.5, dash: 'dot' },
    marker: { color: '#111', size: 6, symbol: 'diamond' },
    hovertemplate: '%{customdata}<br>%{y:.3~f} ms<extra></extra>',
  };
}

function baseLayout(title, ytitle, categories) {
  return {
    title: { text: title, font: { ...FONT, size: 14 }, x: 0.01, xanchor: 'left' },
    font: FONT,
    barmode: 'group',
    bargap: 0.25,
    height: 320,
    margin: { l: 60, r: 60, t: 40, b: 60 },
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: '#fff',
    legend: { orientation: 'h', y: -0.28, x: 0 },
    xaxis: { type: 'category', categoryorder: 'array', categoryarray: categories, tickangle: -50, tickfont: { size: 10 } },
    yaxis: { title: { text: ytitle }, gridcolor: '#e8ebf0', rangemode: 'tozero' },
    hoverlabel: { font: FONT },
  };
}

const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ['select2d', 'lasso2d', 'autoScale2d'] };

/** Draw (or update) both charts; onSelect(path) when a bar is clicked. Resolves once drawn. */
export async function drawCharts({ flopsEl, paramsEl }, ix, { onSelect }) {
  const Plotly = await loadPlotly();
  const categories = ix.blocks.filter((b) => ix.nodes.has(b.path)).map((b) => shortName(b.path));
  const flops = barTraces(ix, 'flops', 1e9, 'GFLOPs');
  const time = timeTrace(ix);
  const fl = baseLayout('FLOPs per block', 'GFLOPs', categories);
  if (time) {
    flops.push(time);
    fl.yaxis2 = { title: { text: 'ms' }, overlaying: 'y', side: 'right', rangemode: 'tozero', showgrid: false };
    fl.title.text = 'FLOPs and measured time per block';
  }
  const params = barTraces(ix, 'params', 1e6, 'M params');
  const pl = baseLayout('Parameters per block', 'millions', categories);
  await Promise.all([
    Plotly.react(flopsEl, flops, fl, CONFIG),
    Plotly.react(paramsEl, params, pl, CONFIG),
  ]);
  for (const el of [flopsEl, paramsEl]) {
    if (el.dataset.bound) continue;
    el.dataset.bound = 'true';
    el.on('plotly_click', (ev) => {
      const path = ev.points?.[0]?.customdata;
      if (path) onSelect(path);
    });
  }
}

// ---- scaling: one model across image sizes (GET /api/scaling) ----------------------------------------------------

const GIB = 2 ** 30;
const ATTN_COLOR = '#c0392b';
const REST_COLOR = '#8da4c4';

/** The square image sizes to trace: 256 to 2048 px, each rounded to a multiple of `step` (the latent factor times
 * the total downsampling, so every level divides evenly), no duplicates. */
export function scalingSizes(step, from = 256, to = 2048) {
  const out = [];
  for (const s of [from, 384, 512, 768, 1024, 1280, 1536, to]) {
    const v = Math.max(step, Math.round(s / step) * step);
    if (!out.includes(v)) out.push(v);
  }
  return out;
}

/** Why the two peak-memory lines differ, at the largest size. */
export function memoryNote(points) {
  const q = points.at(-1);
  if (!q || q.peak_activation_bytes === q.peak_activation_bytes_fused) return '';
  const gib = (b) => `${(b / GIB).toFixed(b >= 10 * GIB ? 0 : 1)} GiB`;
  return `At ${q.image_size[0]} px the peak of activations is ${gib(q.peak_activation_bytes)} with the math attention `
    + `kernel, which materialises every heads × tokens × tokens score matrix, and ${gib(q.peak_activation_bytes_fused)} with a `
    + 'fused kernel (flash / memory-efficient attention), which never holds the scores, only its output.';
}

/** One sentence on how attention grows compared with the rest, from the first and last points. */
export function scalingNote(points) {
  if (points.length < 2) return '';
  const [p, q] = [points[0], points.at(-1)];
  const px = (q.image_size[0] * q.image_size[1]) / (p.image_size[0] * p.image_size[1]);
  const share = (x) => `${((100 * x.attention_flops) / x.flops).toFixed(1)}%`;
  const grow = (a, b) => (a ? `${(b / a).toFixed(b / a >= 100 ? 0 : 1)}×` : 'from zero');
  if (!q.attention_flops) return `From ${p.image_size[0]} to ${q.image_size[0]} px (${px.toFixed(0)}× the pixels) the FLOPs grow ${grow(p.flops, q.flops)}; this model has no attention matmuls.`;
  return `From ${p.image_size[0]} to ${q.image_size[0]} px (${px.toFixed(0)}× the pixels), attention FLOPs grow `
    + `${grow(p.attention_flops, q.attention_flops)}: quadratic in the latent pixels, against ${grow(p.other_flops, q.other_flops)} `
    + `for everything else. Attention is ${share(p)} of the FLOPs at ${p.image_size[0]} px and ${share(q)} at ${q.image_size[0]} px.`;
}

/**
 * FLOPs (attention stacked on the rest) over image size, and below it activation and peak memory, with measured
 * times (ms, right axis) for the sizes that were profiled. `times` maps image size → ms; the API's own time_ms
 * (a profiled trace in its cache) wins.
 */
export async function drawScaling(el, data, { times = new Map(), title = '' } = {}) {
  const Plotly = await loadPlotly();
  const pts = data.points;
  const x = pts.map((p) => p.image_size[0]);
  const bar = (name, key, color) => ({
    type: 'bar', name, x, y: pts.map((p) => p[key] / 1e12), customdata: pts.map((p) => p[key]), marker: { color },
    xaxis: 'x', yaxis: 'y', meta: key,
    hovertemplate: `%{x} px: %{y:.3~f} TFLOPs<extra>${name}</extra>`,
  });
  const share = pts.map((p) => (p.flops ? `${((100 * p.attention_flops) / p.flops).toFixed(1)}% attention` : ''));
  const attention = bar('attention FLOPs (QKᵀ, AV)', 'attention_flops', ATTN_COLOR);
  attention.text = share;
  attention.textposition = 'none';
  attention.hovertemplate = '%{x} px: %{y:.3~f} TFLOPs (%{text})<extra>attention</extra>';
  const line = (name, key, color, dash) => ({
    type: 'scatter', mode: 'lines+markers', name, x, y: pts.map((p) => p[key] / GIB), customdata: pts.map((p) => p[key]),
    xaxis: 'x', yaxis: 'y2', meta: key, line: { color, width: 2, dash }, marker: { size: 6, color },
    hovertemplate: `%{x} px: %{y:.3~f} GiB<extra>${name}</extra>`,
  });
  const traces = [
    bar('other FLOPs (conv, linear, …)', 'other_flops', REST_COLOR),
    attention,
    line('peak memory (weights + activations, math attention)', 'peak_memory_bytes', '#2b303a', 'solid'),
    line('peak activations, math attention (holds the scores)', 'peak_activation_bytes', '#c0392b', 'dash'),
    line('peak activations, fused attention (flash / memory-efficient)', 'peak_activation_bytes_fused', '#23945f', 'dash'),
    line('activations (sum of all outputs)', 'activation_bytes', '#7c5cc4', 'dot'),
  ];
  const measured = pts.map((p) => p.time_ms ?? times.get(p.image_size[0]) ?? null);
  const timed = measured.some((v) => v != null);
  if (timed) {
    traces.push({
      type: 'scatter', mode: 'lines+markers', name: 'measured time', x, y: measured, xaxis: 'x', yaxis: 'y3',
      meta: 'time_ms', connectgaps: true, line: { color: '#d2871f', width: 2 }, marker: { symbol: 'diamond', size: 8 },
      hovertemplate: '%{x} px: %{y:.3~f} ms<extra>measured</extra>',
    });
  }
  const layout = {
    title: { text: title, font: { ...FONT, size: 14 }, x: 0.01, xanchor: 'left' },
    font: FONT,
    barmode: 'stack',
    height: 520,
    margin: { l: 70, r: 70, t: 40, b: 50 },
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: '#fff',
    legend: { orientation: 'h', y: -0.12, x: 0 },
    // One quantity per axis: FLOPs on top, memory below, and measured time in its own panel at the bottom.
    xaxis: { title: { text: 'image size (px, square)' }, anchor: timed ? 'y3' : 'y2', tickvals: x, gridcolor: '#eef0f3' },
    yaxis: { domain: timed ? [0.64, 1] : [0.5, 1], title: { text: 'TFLOPs per step' }, gridcolor: '#e8ebf0', rangemode: 'tozero' },
    yaxis2: { domain: timed ? [0.28, 0.58] : [0, 0.4], title: { text: 'memory (GiB)' }, gridcolor: '#e8ebf0', rangemode: 'tozero' },
    hoverlabel: { font: FONT },
  };
  if (timed) layout.yaxis3 = { domain: [0, 0.2], title: { text: 'time (ms)' }, gridcolor: '#e8ebf0', rangemode: 'tozero' };
  await Plotly.react(el, traces, layout, CONFIG);
}
