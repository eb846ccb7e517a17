// ramp_legend.js — the legend of a painted "Colour by" under the U (the probes' accuracy, the effect of removing a
// block) and of the trace's quantities (features.js): a title that says what is shown, the overlay ramp with both
// ends labelled, and short notes, so every "Colour by" legend under the U reads alike.

import { rampColor } from './config.js';
import { h } from './dom.js';

/**
 * The legend's children. from: the ramp position the low end is painted with (painters start a little above 0 so
 * the lowest block still reads as painted); lo / hi: the ends' labels, and mid: labels spread evenly between them;
 * notes: strings (muted) or nodes.
 */
export function rampLegend({ title, from = 0, lo, hi, mid = [], notes = [] }) {
  const ramp = h('span', { class: 'ramp' });
  const stops = [0, 0.2, 0.4, 0.6, 0.8, 1].map((s) => rampColor(from + (1 - from) * s));
  ramp.style.background = `linear-gradient(to right, ${stops.join(', ')})`;
  const ticks = [h('span', { dataset: { end: 'lo' } }, lo), ...mid.map((m) => h('span', {}, m)),
    h('span', { dataset: { end: 'hi' } }, hi)];
  return [
    h('span', { class: 'ramp-title', dataset: { field: 'legend-title' } }, title),
    h('span', { class: 'ramp-wrap' }, ramp, h('span', { class: 'ramp-ticks' }, ...ticks)),
    ...notes.filter(Boolean).map((n) => (n instanceof Node ? n : h('span', { class: 'muted' }, n))),
  ];
}

/** Show `parts` in the legend element, or hide it (parts null). */
export function showLegend(el, parts) {
  el.hidden = !parts;
  el.replaceChildren(...(parts ?? []));
}
