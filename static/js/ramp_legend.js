// ramp_legend.js — the legend of a painted "Colour by" under the U (the probes' accuracy, the effect of removing a
// block): a title that says what is shown, the overlay ramp with both ends labelled, and short notes. The same
// classes as the trace overlays' legend (features.js), so every legend under the U reads alike.

import { rampColor } from './config.js';
import { h } from './dom.js';

/**
 * The legend's children. from: the ramp position the low end is painted with (painters start a little above 0 so
 * the lowest block still reads as painted); lo / hi: the ends' labels; notes: strings (muted) or nodes.
 */
export function rampLegend({ title, from = 0, lo, hi, notes = [] }) {
  const ramp = h('span', { class: 'ramp' });
  const stops = [0, 0.25, 0.5, 0.75, 1].map((s) => rampColor(from + (1 - from) * s));
  ramp.style.background = `linear-gradient(to right, ${stops.join(', ')})`;
  return [
    h('span', { class: 'ramp-title', dataset: { field: 'legend-title' } }, title),
    h('span', { class: 'ramp-wrap' }, ramp,
      h('span', { class: 'ramp-ticks' }, h('span', { dataset: { end: 'lo' } }, lo), h('span', { dataset: { end: 'hi' } }, hi))),
    ...notes.filter(Boolean).map((n) => (n instanceof Node ? n : h('span', { class: 'muted' }, n))),
  ];
}

/** Show `parts` in the legend element, or hide it (parts null). */
export function showLegend(el, parts) {
  el.hidden = !parts;
  el.replaceChildren(...(parts ?? []));
}
