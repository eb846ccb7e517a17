// effect_overlay.js — "Colour by: effect of removing" on the main U (issue 26): each top-level block of the twin's U
// filled by the Knobs panel's ablation sweep (the mean SSIM drop when that block is removed, the figure the
// panel's small U shows), with a legend under the U. Blocks the sweep did not remove (the time embedding, the
// output head; the input blocks in a sweep of skips) are drawn as "not measured", never as zero.
//
// Choosing it before any sweep has run starts one (the Knobs panel's caption and guidance, each block in turn), and
// the legend shows its progress: what a teacher expects from picking a colouring is to see it, not a hint to go
// elsewhere first. Only drawing: every number is the sweep's.

import { OVERLAY_DARK_FROM, rampColor } from './config.js';
import { h } from './dom.js';
import { rampLegend, showLegend } from './ramp_legend.js';
import { announce } from './status.js';

const KEY = 'ablation';
const FROM = 0.08; // the ramp position of no effect: a block that changed nothing still reads as measured
const NOT_MEASURED = '#e3e6eb'; // a flat grey, outside the ramp's yellow-red
const NOT_MEASURED_BADGE = '—';

/** The painter of a sweep's result: top-level blocks by their SSIM drop, the ones not removed grey. */
export function effectPainter(result, isTop) {
  const effects = new Map(result.effects.map((e) => [e.target, e]));
  const max = Math.max(1e-6, ...result.effects.map((e) => e.ssim_drop));
  return (node) => {
    if (!isTop(node.path)) return null; // the sweep removes whole top-level blocks: nothing inside is its own figure
    const e = effects.get(node.path);
    // Grey with a dash (the legend says: not measured); the words themselves would run into the card's shape.
    if (!e) return { fill: NOT_MEASURED, dark: false, badge: NOT_MEASURED_BADGE };
    const k = FROM + (1 - FROM) * Math.max(0, e.ssim_drop) / max;
    return { fill: rampColor(k), dark: k >= OVERLAY_DARK_FROM, badge: e.ssim_drop.toFixed(2) };
  };
}

/** store: the page's store; knobs: the Knobs panel (its sweep); legend: the element under the U; select: the
 * "Colour by" select; getIndex(): the trace index on screen; renderDiagram(). */
export function createEffectOverlay({ store, knobs, legend, select, getIndex, renderDiagram }) {
  let result = null; // the last sweep's result
  let progress = null; // {done, total, what} while a sweep runs
  let failed = null;
  let paint = null;

  knobs.onSweep((e) => {
    progress = e.state === 'running' ? e : null;
    failed = e.state === 'error' ? e.message : null;
    if (e.state === 'done') result = e.result;
    update();
  });

  // Picked by hand: show the twin (the sweep's model) and, with no sweep yet, run one.
  select.addEventListener('change', () => {
    if (select.value !== KEY) return;
    if (store.state.preset !== 'twin') store.setModel('twin', null);
    if (!result && !progress) knobs.sweep('blocks');
  });

  function update() {
    const was = paint;
    const on = store.state.overlay === KEY;
    paint = on && result ? effectPainter(result, (path) => Boolean(getIndex()?.blockByPath.has(path))) : null;
    drawLegend();
    if (paint || was) renderDiagram();
  }

  function drawLegend() {
    if (store.state.overlay !== KEY) {
      showLegend(legend, null);
      return;
    }
    const twin = store.state.preset === 'twin';
    announce('paint', paint && twin ? KEY : 'none');
    if (progress) {
      const bar = h('progress', { max: progress.total || 1, value: progress.done, dataset: { field: 'effect-progress' } });
      showLegend(legend, [h('span', { class: 'ramp-title' }, `Effect of removing: removing each ${progress.what === 'skips'
        ? 'skip' : 'block'} of the twin in turn (the Knobs panel’s caption, 8 seeds, 20 steps): ${progress.done} of ` +
        `${progress.total || '…'}`), bar]);
      return;
    }
    if (!result || !twin) {
      const run = h('button', { type: 'button', dataset: { field: 'effect-legend-go' } },
        result ? 'Show the twin' : 'Run the sweep');
      run.addEventListener('click', () => (result ? store.setModel('twin', null) : knobs.sweep('blocks')));
      const why = failed ? `the sweep failed: ${failed}.`
        : result ? 'the sweep ran on the twin, not on this model.' : 'no sweep yet (Knobs → Remove in turn).';
      showLegend(legend, [h('span', { class: 'ramp-title' }, `Effect of removing: ${why}`), run]);
      return;
    }
    const max = Math.max(0, ...result.effects.map((e) => e.ssim_drop));
    const top = result.effects.find((e) => e.target === result.ranking[0]);
    showLegend(legend, rampLegend({
      title: `${result.what === 'skips' ? 'Effect of cutting the skip into each output block' : 'Effect of removing each block'}: ` +
        `mean SSIM drop against the baseline (${result.pictures} pictures, ${result.steps} steps)`,
      from: FROM,
      lo: '0',
      hi: max.toFixed(2),
      notes: [
        h('span', { dataset: { field: 'effect-legend-top' } }, `largest: ${top.target} (${top.ssim_drop.toFixed(2)})`),
        h('span', { class: 'effect-unmeasured' }, h('span', { class: 'swatch', style: `background:${NOT_MEASURED}` }),
          ` ${NOT_MEASURED_BADGE} not measured (not removed in this sweep)`),
      ],
    }));
  }

  store.on('overlay', update);
  store.on('trace', drawLegend);

  return {
    /** The U's painter while "Colour by" shows the effect of removing and the twin is on screen, else null. */
    painter: () => (store.state.preset === 'twin' ? paint : null),
  };
}
