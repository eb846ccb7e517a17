// charts.js — FLOPs and parameters per top-level block, coloured by stage, with measured time overlaid after a
// profile. Plotly comes from /vendor/plotly.min.js as a global (a classic script loaded before the modules);
// Plotly.react both creates and updates a chart, so redraws keep zoom state and cost little.

import { STAGE_COLORS, STAGE_NAMES, WIRE_COLORS } from './config.js';

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
    name: STAGE_NAMES[stage] ?? stage,
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
  const Plotly = window.Plotly;
  if (!Plotly) return;
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
