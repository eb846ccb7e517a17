// probes.js — the "Probes" view: which of the twin's (or the server's checkpoint's) activations are discriminative,
// where, and when. A probe run (POST /api/probes, polled) gives held-out accuracy per point, target and timestep
// with its shuffled-label control and chance; the view draws accuracy across t per point (Plotly), ranks the
// points at one t, selects a point's module on the U when clicked, and says in words how the model compares with
// the study; "Colour by: discriminative power" paints the U with a legend under it. The correspondence panel
// below it is correspondence.js's. Only drawing and requests: every number is the server's.

import * as api from './api.js';
import { OVERLAY_DARK_FROM, STAGE_COLORS, rampColor } from './config.js';
import { h } from './dom.js';
import { boxRect, pathToOpen } from './layout.js';
import { loadPlotly } from './plotly-loader.js';
import { rampLegend, showLegend } from './ramp_legend.js';
import { createCorrespondence } from './correspondence.js';
import { announce } from './status.js';
import { weightsModelKey } from './weights.js';

const TARGETS = ['shape', 'colour', 'size', 'position', 'background'];
const SHOWN = 6; // lines in the chart: the best points by mean accuracy over t
const POLL_MS = 400;
const FONT = { family: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', size: 12, color: '#2b303a' };
// Kinds read inside a transformer (the study's point: these were left out of earlier evaluations).
const INSIDE_VIT = new Set(['self-q', 'self-k', 'self-v', 'self-map', 'cross-q', 'cross-k', 'cross-v', 'cross-map',
  'ffn-inner', 'block-out']);

const pct = (v) => `${(v * 100).toFixed(1)}%`;
const FROM = 0.08; // the ramp position of chance: a block at chance still reads as painted
/** Accuracy as the share of the way from chance to 100 % (0 at or below chance). */
const aboveChance = (r) => Math.max(0, Math.min(1, (r.accuracy - r.chance) / (1 - r.chance)));
const colourOf = (stage) => STAGE_COLORS[stage] ?? '#7a8494'; // the U's input points have no stage colour

/** root: the <section id="probes">; store: the page's store (to select a module on the U); legend: the element
 * under the U that explains "Colour by: discriminative power". */
export function createProbes(root, { store, diagram, getIndex, renderDiagram, legend, weights }) {
  let result = null;
  // The model on the U a result belongs to: the twin, or the server's checkpoint as main.js shows it.
  const modelOf = () => (result?.model === 'checkpoint' ? weightsModelKey(weights.info) : 'twin');
  const onIt = () => store.state.preset === modelOf();
  let paint = null; // the U's painter for "Colour by: discriminative power", remade on each change
  let token = 0;
  let pending = null; // a point to select once the twin's U is drawn

  const status = h('span', { class: 'status', role: 'status', 'aria-live': 'polite', id: 'probe-status' });
  // The twin, or the server's checkpoint where it has one (GET /api/probes/models says, with each one's bounds).
  const model = h('select', { id: 'probe-model', 'aria-label': 'Model probed' }, h('option', { value: 'twin' }, 'the twin'));
  const points = h('select', { id: 'probe-points', 'aria-label': 'Points' },
    h('option', { value: '@outputs' }, 'block outputs (@outputs)'),
    h('option', { value: '@all' }, 'every point (@all)'));
  const targetBoxes = TARGETS.map((t) => h('input', { type: 'checkbox', value: t, checked: t !== 'size' || null,
    id: `probe-target-${t}` }));
  const timesteps = h('input', { id: 'probe-timesteps', type: 'text', value: '0 250 500 750 999', size: 18,
    title: 'timesteps of SD’s 1000-step schedule, separated by spaces' });
  const nImages = h('input', { id: 'probe-n', type: 'number', min: 40, max: 2048, step: 8, value: 256 });
  const go = h('button', { type: 'button', id: 'probe-go', class: 'primary' }, 'Run probes');
  const bar = h('progress', { id: 'probe-progress', max: 1, value: 0, hidden: true, 'aria-label': 'Probe run progress' });
  const error = h('p', { class: 'gen-error', role: 'alert', id: 'probe-error', hidden: true });

  const showTarget = h('select', { id: 'probe-target', 'aria-label': 'Target shown' });
  const showT = h('select', { id: 'probe-t', 'aria-label': 'Timestep ranked' });
  const chart = h('div', { id: 'probe-chart', class: 'probe-chart' });
  const ranking = h('ol', { id: 'probe-ranking', class: 'probe-ranking' });
  const sentence = h('p', { id: 'probe-sentence', class: 'probe-sentence' });
  const recipe = h('details', { class: 'probe-recipe' }, h('summary', {}, 'Recipe'), h('pre', { id: 'probe-recipe' }));
  const output = h('div', { class: 'probe-output', hidden: true },
    h('div', { class: 'probe-show' },
      h('label', { class: 'field inline', for: 'probe-target' }, 'Target ', showTarget),
      h('label', { class: 'field inline', for: 'probe-t' }, 'Rank at t = ', showT)),
    h('div', { class: 'probe-grid' }, chart, h('div', { class: 'probe-side' },
      h('h3', {}, 'Points, best first'), ranking)),
    h('p', { class: 'probe-colour' },
      h('button', { type: 'button', id: 'probe-colour' }, 'Colour the U by discriminative power'),
      h('span', { class: 'muted' }, ' each block of the probed model’s U filled by its best point’s accuracy for this target',
        ' and t (light: chance, dark: 100%), the accuracy on its card')),
    sentence, recipe);

  root.replaceChildren(
    h('div', { class: 'act-head' }, h('h2', {}, 'Probes'), status),
    h('p', { class: 'hint' },
      'Which activations are discriminative? A linear classifier per point learns to read a property of the ',
      'picture (the object’s shape, colour, size, position, the ground) from that point’s pooled features, and is ',
      'scored on pictures it never saw. The same probe on shuffled labels is the control: it must sit at chance.'),
    h('div', { class: 'gen-form probe-form', id: 'probe-form' },
      h('label', { class: 'field inline', for: 'probe-points' }, 'Points ', points),
      h('span', { class: 'field inline', role: 'group', 'aria-label': 'Targets' }, 'Targets ',
        ...targetBoxes.map((b) => h('label', { class: 'probe-check', for: b.id }, b, ` ${b.value}`))),
      h('label', { class: 'field inline', for: 'probe-timesteps' }, 'Timesteps ', timesteps),
      h('label', { class: 'field inline', for: 'probe-n' }, 'Pictures ', nImages),
      go, bar),
    error, output, createCorrespondence());

  api.getProbeModels().then((list) => {
    const ck = list.find((m) => m.model === 'checkpoint');
    bounds = new Map(list.map((m) => [m.model, m]));
    if (ck) {
      model.append(h('option', { value: 'checkpoint', disabled: !ck.usable || null, title: ck.reason ??
        `the world’s pictures through its VAE at ${ck.image_size}×${ck.image_size} px; at most ${ck.max_images} pictures` },
      `checkpoint: ${ck.file}`));
      root.querySelector('#probe-form').prepend(h('label', { class: 'field inline', for: 'probe-model' }, 'Model ', model));
    }
    root.dataset.models = list.map((m) => m.model).join(' ');
  }, () => {});
  let bounds = new Map();
  model.addEventListener('change', () => {
    const max = bounds.get(model.value)?.max_images;
    if (!max) return;
    nImages.max = max;
    if (Number(nImages.value) > max) nImages.value = String(max);
  });

  function fail(message) {
    error.textContent = message;
    error.hidden = false;
    root.dataset.state = 'error';
    status.textContent = '';
    bar.hidden = true;
  }

  go.addEventListener('click', async () => {
    const mine = ++token;
    error.hidden = true;
    const ts = timesteps.value.trim().split(/[\s,]+/).filter(Boolean).map(Number);
    const body = {
      points: [points.value],
      targets: targetBoxes.filter((b) => b.checked).map((b) => b.value),
      timesteps: ts,
      n_images: Number(nImages.value),
      model: model.value,
    };
    root.dataset.state = 'running';
    status.textContent = 'queued…';
    bar.hidden = false;
    bar.value = 0;
    try {
      const { id } = await api.startProbes(body);
      for (;;) {
        const job = await api.getProbes(id);
        if (mine !== token) return;
        const p = job.progress;
        if (p.total) bar.value = p.done / p.total;
        status.textContent = job.state === 'running' ? `${p.phase} (${p.done}/${p.total})` : job.state;
        if (job.state === 'done') {
          show(job.result);
          return;
        }
        if (job.state === 'failed' || job.state === 'cancelled') return fail(job.error ?? job.state);
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    } catch (e) {
      if (mine === token) fail(e.field ? `${e.field}: ${e.reason ?? e.message}` : e.message);
    }
  });

  function show(res) {
    result = res;
    bar.hidden = true;
    status.textContent = `${res.rows.length} probes${res.checkpoint ? ` on ${res.checkpoint}` : ''}, ` +
      `${res.timings.total_s.toFixed(1)} s${res.random_weights ? ' — random weights' : ''}`;
    showTarget.replaceChildren(...res.targets.map((t) => h('option', { value: t }, t)));
    showT.replaceChildren(...res.timesteps.map((t) => h('option', { value: t }, String(t))));
    showT.value = String(res.timesteps[Math.floor((res.timesteps.length - 1) / 2)]);
    document.getElementById('probe-recipe').textContent = JSON.stringify(res.recipe, null, 1);
    output.hidden = false;
    redraw();
  }

  showTarget.addEventListener('change', redraw);
  showT.addEventListener('change', redraw);
  root.querySelector('#probe-colour').addEventListener('click', () => {
    if (!onIt()) store.setModel(modelOf(), null);
    store.setOverlay('probes');
    repaint();
  });
  store.on('overlay', repaint);

  /** A new painter for the U: each node by the best point read at or inside it (null: not ours to paint). */
  function repaint() {
    const was = paint;
    paint = null;
    const on = store.state.overlay === 'probes';
    if (result && on) {
      const rows = shownRows();
      paint = (node) => {
        let best = null;
        for (const r of rows) {
          const inside = r.module === node.path || r.module.startsWith(`${node.path}.`);
          if (inside && (!best || r.accuracy > best.accuracy)) best = r;
        }
        if (!best) return null;
        const k = FROM + (1 - FROM) * aboveChance(best);
        return { fill: rampColor(k), dark: k >= OVERLAY_DARK_FROM, badge: `${Math.round(best.accuracy * 100)}%` };
      };
    }
    root.dataset.paint = paint ? `${showTarget.value}@${showT.value}` : 'none';
    drawLegend();
    if (paint || was) renderDiagram();
  }

  /** The rows the U shows: the chosen target and t, each with the module its point is read at. */
  function shownRows() {
    const target = showTarget.value;
    const t = Number(showT.value);
    const info = new Map(result.points.map((p) => [p.name, p]));
    return result.rows.filter((r) => r.target === target && r.t === t)
      .map((r) => ({ ...r, module: info.get(r.point).module || info.get(r.point).block_path }));
  }

  /** The legend under the U while "Colour by" shows discriminative power: the scale from chance to 100 %, the
   * target and t shown, the best point; or what to do when there is nothing to paint yet. */
  function drawLegend() {
    if (store.state.overlay !== 'probes') {
      showLegend(legend, null);
      return;
    }
    const here = onIt();
    announce('paint', paint && here ? 'probes' : 'none');
    if (!result || !here) {
      const button = h('button', { type: 'button', dataset: { field: 'probe-legend-go' } },
        result ? `Show the ${result.model}` : 'Go to Probes');
      button.addEventListener('click', () => (result ? store.setModel(modelOf(), null) : root.scrollIntoView()));
      showLegend(legend, [h('span', { class: 'ramp-title' }, result
        ? `Discriminative power: the probes ran on the ${result.model}, not on this model.`
        : 'Discriminative power: no probe run yet. Run probes in the Probes panel; each block then shows its best point.'),
      button]);
      return;
    }
    const rows = shownRows();
    const best = rows.reduce((a, r) => (r.accuracy > a.accuracy ? r : a), rows[0]);
    showLegend(legend, rampLegend({
      title: `Discriminative power, ${showTarget.value} at t = ${showT.value}: each block shows its best point’s ` +
        'held-out accuracy',
      from: FROM,
      lo: `${pct(best.chance)} chance`,
      hi: '100%',
      notes: [
        h('span', { dataset: { field: 'probe-legend-best' } }, `best ${pct(best.accuracy)} (${best.point})`),
        'kind colours: no point probed inside',
        result.random_weights ? 'random weights' : null,
      ],
    }));
  }

  store.on('trace', drawLegend); // the painter shows on the twin only: the legend says so on another model

  function rowsOf(target) {
    return result.rows.filter((r) => r.target === target);
  }

  async function redraw() {
    if (!result) return;
    const target = showTarget.value;
    const t = Number(showT.value);
    const rows = rowsOf(target);
    const info = new Map(result.points.map((p) => [p.name, p]));
    // The chart: the best points by their mean accuracy over the sweep, the mean control, chance.
    const byPoint = new Map();
    for (const r of rows) {
      if (!byPoint.has(r.point)) byPoint.set(r.point, []);
      byPoint.get(r.point).push(r);
    }
    const mean = (rs, k) => rs.reduce((s, r) => s + r[k], 0) / rs.length;
    const best = [...byPoint].sort((a, b) => mean(b[1], 'accuracy') - mean(a[1], 'accuracy')).slice(0, SHOWN);
    const ts = result.timesteps;
    const traces = best.map(([name, rs]) => ({
      type: 'scatter', mode: 'lines+markers', name,
      x: rs.map((r) => r.t), y: rs.map((r) => r.accuracy),
      line: { width: 2, color: colourOf(info.get(name)?.stage) },
      marker: { size: 6 },
      hovertemplate: `${name}<br>t = %{x}: %{y:.1%}<extra></extra>`,
    }));
    const control = ts.map((x) => mean(rows.filter((r) => r.t === x), 'control_accuracy'));
    traces.push({ type: 'scatter', mode: 'lines', name: 'shuffled-label control (mean of points)', x: ts, y: control,
      line: { color: '#666', dash: 'dash', width: 1.5 }, hovertemplate: 'control, t = %{x}: %{y:.1%}<extra></extra>' });
    traces.push({ type: 'scatter', mode: 'lines', name: 'chance', x: ts, y: ts.map(() => rows[0]?.chance ?? 0),
      line: { color: '#b3261e', dash: 'dot', width: 1 }, hoverinfo: 'skip' });
    chart.dataset.lines = String(best.length);
    const Plotly = await loadPlotly().catch(() => null); // without plotly.js, the ranking below still says it all
    if (Plotly) {
      await Plotly.react(chart, traces, {
        title: { text: `${target}: held-out accuracy across t (best ${best.length} points)`, font: { ...FONT, size: 14 },
          x: 0.01, xanchor: 'left' },
        font: FONT, height: 400, margin: { l: 50, r: 10, t: 36, b: 110 },
        paper_bgcolor: 'rgba(0,0,0,0)', plot_bgcolor: '#fff',
        xaxis: { title: { text: 'timestep t (0 = clean, 999 = noise)' }, gridcolor: '#eef0f3' },
        yaxis: { range: [0, 1.02], tickformat: '.0%', gridcolor: '#eef0f3' },
        legend: { font: { size: 10 }, orientation: 'h', x: 0, y: -0.2, yanchor: 'top' },
      }, { displayModeBar: false, responsive: true });
    }
    // The ranking at the chosen t.
    const at = rows.filter((r) => r.t === t).sort((a, b) => b.accuracy - a.accuracy);
    ranking.replaceChildren(...at.map((r, i) => {
      const p = info.get(r.point);
      const button = h('button', { type: 'button', class: 'probe-point', 'data-point': r.point,
        'data-module': p.module || p.block_path,
        title: `${p.kind} · module ${p.module || '(the UNet)'} · click to select it on the U` },
      h('span', { class: 'probe-name' }, r.point),
      h('span', { class: 'probe-bar', style: `--w:${(r.accuracy * 100).toFixed(1)}%;--c:${colourOf(p.stage)}` }),
      h('span', { class: 'probe-acc' }, pct(r.accuracy)),
      h('span', { class: 'probe-ctl', title: 'shuffled-label control' }, `ctl ${pct(r.control_accuracy)}`));
      button.addEventListener('click', () => selectPoint(p));
      return h('li', { 'data-rank': i + 1 }, button);
    }));
    sentence.textContent = compare(at, info, target, t, result);
    repaint();
    root.dataset.state = 'done';
  }

  /** Select the point's module on the U (the twin's, shown first if another model is), opening the blocks above. */
  function selectPoint(p) {
    root.dataset.selected = p.name;
    if (!onIt() || !getIndex()) {
      pending = p;
      store.setModel(modelOf(), null);
      return;
    }
    selectOnU(p.module || p.block_path);
  }

  store.on('trace', () => {
    if (!pending || !onIt()) return;
    const p = pending;
    pending = null;
    // After the diagram has drawn the new trace (its own 'trace' listener runs first).
    setTimeout(() => selectOnU(p.module || p.block_path), 0);
  });

  function selectOnU(path) {
    const ix = getIndex();
    if (!ix) return;
    while (path && !ix.nodes.has(path)) path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';
    if (!path) return;
    const open = new Set(store.state.expanded);
    const before = open.size;
    for (const q of pathToOpen(ix, path)) open.add(q);
    if (open.size !== before) store.setExpanded([...open]);
    store.select(path);
    if (diagram?.scene) diagram.reveal(boxRect(diagram.scene, path));
    root.dataset.shown = path;
  }

  return {
    show,
    /** The U's painter while "Colour by" shows discriminative power and the probed model is on screen. */
    painter: () => (onIt() ? paint : null),
  };
}

/** The probed model against the study, in words, from the ranking at one t. */
function compare(at, info, target, t, res) {
  if (!at.length) return '';
  const top = at.slice(0, 5);
  const inside = top.filter((r) => INSIDE_VIT.has(info.get(r.point).kind)).length;
  const up = top.filter((r) => info.get(r.point).stage === 'up').length;
  const best = at[0];
  const kind = info.get(best.point).kind;
  const near = at.filter((r) => r.accuracy >= best.accuracy - 0.02).length;
  const strong = at.filter((r) => r.accuracy >= 0.9).length;
  const onCheckpoint = res.model === 'checkpoint';
  const caveat = onCheckpoint
    ? `these are drawn shapes, not photographs, seen through ${res.checkpoint}’s VAE, on ${res.n_images} pictures`
    : 'the twin is 1.7 M parameters trained on coloured shapes';
  return `On ${onCheckpoint ? res.checkpoint : 'this small model'}, at t = ${t} the best point for ${target} is ${best.point} (${kind}, ${pct(best.accuracy)}` +
    ` held out, control ${pct(best.control_accuracy)}); ${near} point${near === 1 ? '' : 's'} come within 2 points of it.` +
    ` Of the top five, ${inside} ${inside === 1 ? 'is' : 'are'} read inside a transformer (q, k, v, maps, FFN) and ` +
    `${up} ${up === 1 ? 'lies' : 'lie'} in the up stage. The study reports for SD that the best features are often ` +
    'inside the transformers and in the up stage, and that the best one changes with t. Here ' +
    `${strong} of ${at.length} points read ${target} at 90% or better; ${caveat}, so where it agrees with the ` +
    'study is a hint, not a proof.';
}
