// blockweights.js — block weights on the U (issue 14): a field takes what the block-weighting tools take (an ID
// list `IN05,OUT05`, ranges `IN04-OUT05`, `NOT …`, a preset `ALL`, `INS`, `MIDD`, … or a vector of numbers), the
// server reads it (POST /api/names/block-weights: the parsing and the accepted lengths are its knowledge, not the
// page's), and every card is painted by its block's weight with the number on it. A spec the server refuses shows
// its reason next to the field (a wrong-length vector: the lengths this model accepts).

import { OVERLAY_DARK_FROM, rampColor } from './config.js';
import { h } from './dom.js';

const ZERO = '#dfe3e8'; // a block switched off
const NEGATIVE = ['#dbe8fb', '#2f6fd0']; // light → dark blue for weights below 0

/** A weight as the tools write it: 1, 0.5, -0.25. */
export function weightText(w) {
  return w == null ? '—' : String(Number(w.toFixed(3)));
}

function mix(a, b, t) {
  const rgb = (hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));
  const [x, y] = [rgb(a), rgb(b)];
  return `#${x.map((v, k) => Math.round(v + (y[k] - v) * t).toString(16).padStart(2, '0')).join('')}`;
}

/** The entry of the top-level block that holds `path` (its longest dotted prefix among the blocks). */
function blockOf(byPath, path) {
  const parts = path.split('.');
  for (let i = parts.length; i > 0; i -= 1) {
    const hit = byPath.get(parts.slice(0, i).join('.'));
    if (hit) return hit;
  }
  return null;
}

/** The card painter of one /api/names/block-weights answer: a block (and everything in it) gets its weight. */
export function weightsPainter(result) {
  const byPath = new Map(result.blocks.map((b) => [b.path, b]));
  const weights = result.blocks.map((b) => b.weight).filter((w) => w != null);
  const maxPos = Math.max(1, ...weights);
  const maxNeg = Math.max(1, ...weights.map((w) => -w));
  return (node) => {
    const block = blockOf(byPath, node.path);
    if (!block || block.weight == null) return null;
    const w = block.weight;
    const badge = `×${weightText(w)}`;
    if (w === 0) return { fill: ZERO, dark: false, badge };
    if (w < 0) {
      const t = 0.25 + 0.75 * Math.min(1, -w / maxNeg);
      return { fill: mix(NEGATIVE[0], NEGATIVE[1], t), dark: t >= 0.6, badge };
    }
    const t = 0.12 + 0.88 * Math.min(1, w / maxPos);
    return { fill: rampColor(t), dark: t >= OVERLAY_DARK_FROM, badge };
  };
}

/** The legend of a block-weight answer: the scale, BASE (the text encoder, not on the U), and the server's notes. */
export function weightsLegend(result) {
  const max = Math.max(1, ...result.blocks.map((b) => b.weight ?? 0));
  const read = {
    preset: `preset over the ${result.id_list}-ID list`,
    vector: result.scheme === 'merge' ? 'vector of merge weights' : `vector over the ${result.id_list}-ID list`,
    ids: 'IDs and ranges: the rest at 0',
  }[result.kind];
  const ramp = h('span', { class: 'ramp' });
  ramp.style.background = `linear-gradient(to right, ${ZERO}, ${[0.12, 0.4, 0.7, 1].map(rampColor).join(', ')})`;
  const parts = [
    h('span', { class: 'ramp-title' }, `Block weights (${read}):`),
    h('span', { class: 'ramp-wrap' }, ramp, h('span', { class: 'ramp-ticks' }, h('span', {}, '0'), h('span', {}, weightText(max)))),
  ];
  if (result.blocks.some((b) => (b.weight ?? 0) < 0)) parts.push(h('span', { class: 'bw-neg' }, 'blue: below 0'));
  if (result.text_encoder != null) parts.push(h('span', { dataset: { field: 'bw-base' } }, `BASE (text encoder) ×${weightText(result.text_encoder)}`));
  if (result.ignored.length) {
    parts.push(h('span', { class: 'muted', dataset: { field: 'bw-ignored' } }, `not in this model: ${result.ignored.join(', ')}`));
  }
  if (result.notes.length) {
    // How the tool reads this spec, in the server's words: folded, so the legend stays one line.
    const notes = h('details', { class: 'bw-notes', dataset: { field: 'bw-notes' } });
    notes.append(h('summary', {}, `how it is read (${result.notes.length})`), ...result.notes.map((n) => h('p', { class: 'muted' }, n)));
    parts.push(notes);
  }
  return parts;
}

/**
 * Wires the field. load(spec) asks the server for the model on screen; onSpec(spec) tells the store what was
 * typed; onResult(result | null) hands the answer (null: cleared or refused) to whoever paints. The field's
 * dataset.state is "empty", "loading", "done" or "error" (for tests).
 */
export function createBlockWeights({ input, error, legend, presets }, { load, onSpec, onResult }) {
  let token = 0;
  let result = null;

  input.addEventListener('change', () => onSpec(input.value.trim() || null));
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      input.value = '';
      onSpec(null);
    }
  });

  function showError(message) {
    error.textContent = message ?? '';
    error.hidden = !message;
  }

  /** Read `spec` for the model on screen (again after a model change: the accepted lengths differ). */
  async function apply(spec) {
    const mine = ++token;
    if (input.value.trim() !== (spec ?? '')) input.value = spec ?? '';
    showError(null);
    if (!spec) {
      result = null;
      input.dataset.state = 'empty';
      legend.replaceChildren();
      legend.hidden = true;
      onResult(null);
      return;
    }
    input.dataset.state = 'loading';
    try {
      const res = await load(spec);
      if (mine !== token) return;
      result = res;
      input.dataset.state = 'done';
      input.removeAttribute('aria-invalid');
      legend.replaceChildren(...weightsLegend(res));
      legend.hidden = false;
      onResult(res);
    } catch (err) {
      if (mine !== token) return;
      result = null;
      input.dataset.state = 'error';
      input.setAttribute('aria-invalid', 'true');
      showError(err.field === 'spec' && err.reason ? `${err.reason}` : err.message);
      legend.replaceChildren();
      legend.hidden = true;
      onResult(null);
    }
  }

  /** The presets of the block-weight tools (from /api/names) as suggestions in the field. */
  function setPresets(list) {
    presets.replaceChildren(...(list ?? []).map((p) => h('option', { value: p.name }, p.values.map(weightText).join(','))));
  }

  return {
    apply,
    setPresets,
    get result() {
      return result;
    },
  };
}
