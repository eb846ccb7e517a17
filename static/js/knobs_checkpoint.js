// knobs_checkpoint.js — the Knobs panel's model choice: the twin (POST /api/generate answers at once) or the
// server's checkpoint (`serve --weights FILE`: POST /api/interventions, a job polled for its progress, seconds a step
// on a CPU). The choice shows only when the server has a weights file (GET /api/weights, read once by main.js).
// Requests and two controls only; knobs.js draws the result.

import * as api from './api.js';
import { h } from './dom.js';
import { announce } from './status.js';

const POLL_MS = 500;

/** The model select and the picture size (the checkpoint's only: the twin draws 32×32), hidden until offered. */
export function createModelChoice() {
  const select = h('select', { id: 'knob-model' }, h('option', { value: 'twin' }, 'the twin'));
  const size = h('select', { id: 'knob-size' },
    ...[128, 256, 384, 512].map((s) => h('option', { value: String(s), selected: s === 256 }, `${s}×${s}`)));
  const sizeField = h('label', { class: 'field inline knob-field', for: 'knob-size', hidden: true }, 'Size ', size);
  const element = h('span', { class: 'knob-model', hidden: true },
    h('label', { class: 'field inline knob-field', for: 'knob-model' }, 'Model ', select), sizeField);
  select.addEventListener('change', () => { sizeField.hidden = select.value !== 'checkpoint'; });
  return {
    element,
    /** info: GET /api/weights's answer, or null when the server has no weights file. */
    offer(info) {
      if (info) {
        select.append(h('option', { value: 'checkpoint' }, `server checkpoint (${info.file})`));
        element.hidden = false;
      }
      announce('knobsModels', info ? 'twin+checkpoint' : 'twin');
    },
    get model() {
      return select.value;
    },
    get imageSize() {
      return [Number(size.value), Number(size.value)];
    },
  };
}

/** The knobs on the server's checkpoint: queue the run, report each poll to onProgress(snapshot), resolve to its
 * result ({image, baseline, difference, mse, ssim, verdict_reason, timings, …}) or throw the job's error. */
export async function runOnCheckpoint(body, onProgress) {
  let snap = await api.startIntervention(body);
  while (snap.state === 'queued' || snap.state === 'running') {
    onProgress(snap);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    snap = await api.getIntervention(snap.id);
  }
  if (snap.state !== 'done') throw new Error(snap.error || `the run ended ${snap.state}`);
  return snap.result;
}
