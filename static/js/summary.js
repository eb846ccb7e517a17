// summary.js — the text under the toolbar: the model's totals (parameters, FLOPs per forward and per guided
// sampling step, attention, peak memory, measured time) as a definition list, and the hint saying what the figure
// on each card is. Text only, via textContent.

import { bytes, compact, shapeText } from './format.js';

/** The totals of `trace` as a <dl>; `title` is the model asked for (not trace.preset: sd2 and sd2-v trace alike). */
export function summaryList(trace, title) {
  const input = trace.input ?? {};
  const size = input.image_size ? `${input.image_size.join('×')} px` : `latent ${input.sample_size?.join('×')}`;
  const parts = [
    ['Model', title ?? 'custom config'],
    ['Parameters', `${compact(trace.totals.params)} (${bytes(trace.totals.param_bytes)})`],
    ['FLOPs per UNet forward', `${compact(trace.totals.flops)} at ${size} (latent ${shapeText(input.x?.shape)})`],
    ['Attention', `${compact(trace.totals.attention_flops)} FLOPs in QKᵀ and AV`],
    ['Peak memory', bytes(trace.totals.peak_memory_bytes)],
  ];
  // A conditioned model is sampled with classifier-free guidance: each step runs the UNet with the prompt (or
  // label) and without, and mixes the two predictions. The trace's pipeline says how many forwards a step takes.
  const calls = trace.pipeline?.unet_calls_per_step ?? 1;
  if (trace.pipeline?.guidance) {
    parts.splice(3, 0, [
      'Per sampling step',
      `${compact(calls * trace.totals.flops)} FLOPs with classifier-free guidance: the UNet runs `
        + `${calls === 2 ? 'twice' : `${calls} times`}, with the prompt and without, and the two predictions are mixed`,
    ]);
  }
  if (input.context) parts.push(['Context', shapeText(input.context.shape)]);
  if (trace.totals.time_ms != null) parts.push(['Measured', `${trace.totals.time_ms.toFixed(1)} ms per forward on ${trace.device}`]);
  const dl = document.createElement('dl');
  for (const [k, v] of parts) {
    const div = document.createElement('div');
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    div.append(dt, dd);
    dl.append(div);
  }
  return dl;
}

/** What the figure on each card is: it follows "Colour by" when that is a quantity the cards can show. */
export function metricHint(state) {
  const shown = ['flops', 'params', 'time'].includes(state.overlay) ? state.overlay : state.metric;
  const words = { flops: 'share of the FLOPs', params: 'share of the parameters', time: 'measured time' }[shown];
  return `The figure on each card: its ${words}. `
    + (shown === 'flops' ? '“—”: element-wise ops (norms, activations) are not counted in FLOPs.' : '');
}
