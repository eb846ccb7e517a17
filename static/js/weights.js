// weights.js — the weights file the server was started with (`sdunet-explorer serve --weights FILE`): which
// architecture it holds, whether the model on screen is that architecture, each module's weight statistics (asked
// for once per module, then cached) and the small histogram the details panel draws with Plotly.
//
// The page template says whether a weights file was given (<meta name="sdunet-weights">), so a server without one
// is never asked: its 404 would be a console error in every page load.

import { loadPlotly } from './plotly-loader.js';

/** Config objects compared by value, whatever the order of their keys. */
export function sameConfig(a, b) {
  const canonical = (v) =>
    Array.isArray(v)
      ? `[${v.map(canonical).join(',')}]`
      : v && typeof v === 'object'
        ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`
        : JSON.stringify(v ?? null);
  return a != null && b != null && canonical(a) === canonical(b);
}

/** The model the page shows for the weights file: its preset when it is one, else its own entry (main.js adds it). */
export function weightsModelKey(info) {
  return info.preset ?? `weights:${info.file}`;
}

/** A weight statistic with four significant digits: 0.01234, -1.235, 1.234e-7, 0. */
export function statNumber(x) {
  if (x == null || Number.isNaN(x)) return '—';
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '−∞';
  const a = Math.abs(x);
  if (a < 1e-4 || a >= 1e6) return x.toExponential(3);
  return x.toPrecision(4);
}

/**
 * The weights file, through the API calls given. load() resolves to its info ({file, format, prefix, preset,
 * config, num_parameters}) or null when the server has none.
 */
export function createWeights({ getWeights, getWeightStats }) {
  let info = null;
  const stats = new Map(); // module path → Promise of its statistics

  return {
    async load() {
      const flag = document.querySelector('meta[name="sdunet-weights"]')?.getAttribute('content');
      if (flag !== 'yes') return null;
      info = await getWeights();
      return info;
    },
    get info() {
      return info;
    },
    /** Whether a model with this config is the weights' architecture (so stats and use_weights apply). */
    matches(config) {
      return info != null && sameConfig(info.config, config);
    },
    stats(path) {
      if (!stats.has(path)) {
        const p = getWeightStats(path);
        stats.set(path, p);
        p.catch(() => stats.delete(path)); // a failure is asked again next time
      }
      return stats.get(path);
    },
  };
}

/** A histogram of the statistics' bins (Plotly.react creates and updates alike). Resolves once drawn. */
export async function drawHistogram(el, s) {
  if (!s?.histogram) return;
  const Plotly = await loadPlotly();
  const { edges, counts, sampled } = s.histogram;
  const centers = counts.map((_, i) => (edges[i] + edges[i + 1]) / 2);
  const widths = counts.map((_, i) => edges[i + 1] - edges[i] || 1);
  const trace = {
    type: 'bar',
    x: centers,
    y: counts,
    width: widths,
    marker: { color: '#2f6fd0', line: { width: 0 } },
    hovertemplate: '%{x:.3~g}: %{y} values<extra></extra>',
  };
  const layout = {
    height: 150,
    margin: { l: 44, r: 8, t: 22, b: 28 },
    bargap: 0,
    font: { family: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', size: 10, color: '#2b303a' },
    title: { text: sampled ? 'Values (histogram of a sample)' : 'Values', font: { size: 11 }, x: 0.01, xanchor: 'left' },
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: '#fff',
    xaxis: { zeroline: true, zerolinecolor: '#98a2b3', tickformat: '.2~g' },
    yaxis: { gridcolor: '#e8ebf0', rangemode: 'tozero', tickformat: '~s' },
    showlegend: false,
  };
  return Plotly.react(el, [trace], layout, { displayModeBar: false, responsive: true });
}
