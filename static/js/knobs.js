// knobs.js — the "Knobs" panel beside Generate: change one thing in the twin's forward pass, run the same seed, and
// see the picture beside the baseline with their difference, MSE, SSIM and the attribute reader's two verdicts
// (POST /api/generate with `interventions`). "Remove each in turn" runs the ablation sweep (POST /api/ablation, a
// job polled for progress) and paints the blocks of a small U by the effect of removing each. Only drawing and
// requests: every picture and number is the server's. The same sweep paints the main U (effect_overlay.js).

import * as api from './api.js';
import { h } from './dom.js';
import { createModelChoice, runOnCheckpoint } from './knobs_checkpoint.js';
import { announce } from './status.js';

// One sentence per knob: what it does here, and what the real model (SD) does at that place.
const KINDS = {
  scale: {
    label: 'Scale a block',
    says: 'Multiplies the output of the blocks a block-weight spec selects (0 removes them). The community’s ' +
      'block-weight tools scale a LoRA’s change to each block, not the block itself: this is the stronger cut. ' +
      'In SD the middle block holds the most abstract, lowest-resolution view of the picture.',
  },
  cut_skip: {
    label: 'Cut a skip',
    says: 'Replaces what an output block receives from its mirror input block by zeros or by each channel’s mean. ' +
      'In SD the skips carry the fine, where-is-what detail past the deep blocks; without them the up-path ' +
      'must rebuild it from the deepest features alone.',
  },
  token_weight: {
    label: 'Reweight a word',
    says: 'Multiplies how much every cross-attention layer takes from one word of the caption (×0 ignores it). ' +
      'This is prompt-to-prompt’s reweighting; SD front ends’ (word:1.3) syntax scales the word’s text embedding instead.',
  },
  swap_prompt: {
    label: 'Swap the caption',
    says: 'From a chosen step on, the UNet attends to another caption. In SD the early, noisy steps settle the ' +
      'layout and the late ones the details, which is what prompt-to-prompt and prompt editing rely on.',
  },
  cache: {
    label: 'Cache (DeepCache)',
    says: 'Runs the whole UNet every k-th step; in between only the outermost input and output blocks, reusing the ' +
      'deep features of the last full step. DeepCache does this to SD because those features change slowly.',
  },
  guidance: {
    label: 'Guidance scale',
    says: 'Classifier-free guidance on these steps: ε̂ = ε̂(empty) + g·(ε̂(caption) − ε̂(empty)). SD runs the UNet ' +
      'twice a step for it; 1 follows the caption alone, more pushes away from the empty caption.',
  },
  negative: {
    label: 'Negative caption',
    says: 'The caption guidance moves away from on these steps, in place of the empty one: SD’s negative prompt.',
  },
};
const SKIP_BLOCKS = ['output_blocks.0', 'output_blocks.1', 'output_blocks.2', 'output_blocks.3', 'output_blocks.4', 'output_blocks.5'];

function pixels(src, size, alt, id) {
  return h('img', { class: 'gen-pixels', src, alt, width: size, height: size, id });
}

function field(label, control, extra = {}) {
  return h('label', { class: 'field inline knob-field', for: control.id, ...extra }, label, ' ', control);
}

function input(id, attrs) {
  return h('input', { id, autocomplete: 'off', spellcheck: 'false', ...attrs });
}

/** root: the <section id="knobs">. Returns { offerCheckpoint(weightsInfo | null) }: main.js calls it once it has
 * read the server's weights file, and the panel then offers "server checkpoint" as the model. */
export function createKnobs(root) {
  const choice = createModelChoice();
  const caption = input('knob-caption', { type: 'text', value: 'a large red circle at the top left on a black background' });
  const seed = input('knob-seed', { type: 'number', min: 0, max: 2147483647, step: 1, value: 0 });
  const steps = input('knob-steps', { type: 'number', min: 2, max: 200, step: 1, value: 50 });
  const guidance = input('knob-guidance', { type: 'number', min: 0, max: 20, step: 0.5, value: 3 });
  const kind = h('select', { id: 'knob-kind' },
    ...Object.entries(KINDS).map(([k, v]) => h('option', { value: k }, v.label)));
  const says = h('p', { class: 'hint knob-says', id: 'knob-says' });
  const params = h('div', { class: 'knob-params', id: 'knob-params' });
  const fromStep = input('knob-from', { type: 'number', min: 0, step: 1, value: 0 });
  const toStep = input('knob-to', { type: 'number', min: 0, step: 1, placeholder: 'last' });
  const go = h('button', { type: 'button', id: 'knob-go', class: 'primary' }, 'Run with the knob');
  const status = h('span', { class: 'status', role: 'status', 'aria-live': 'polite', id: 'knob-status' });
  const error = h('p', { class: 'gen-error', role: 'alert', id: 'knob-error', hidden: true });
  const output = h('div', { class: 'knob-output', id: 'knob-output', hidden: true });
  const sweepWhat = h('select', { id: 'knob-sweep-what' },
    h('option', { value: 'blocks' }, 'each block'), h('option', { value: 'skips' }, 'each skip'));
  const sweepGo = h('button', { type: 'button', id: 'knob-sweep-go' }, 'Remove in turn');
  const sweepStatus = h('span', { class: 'status', role: 'status', 'aria-live': 'polite', id: 'knob-sweep-status' });
  const sweepOut = h('div', { class: 'knob-sweep', id: 'knob-sweep' });

  // Each kind's own controls; read back by `intervention()`.
  const controls = {
    scale: () => [
      field('Blocks', input('knob-blocks', { type: 'text', value: 'M00', size: 14, title: 'a block-weight spec: IDs (IN04, M00, OUT05), ranges (IN04-OUT05), NOT …' })),
      field('× weight', input('knob-weight', { type: 'number', min: -4, max: 4, step: 0.1, value: 0 })),
    ],
    cut_skip: () => [
      field('Skip into', h('select', { id: 'knob-skip' }, h('option', { value: 'all' }, 'every output block'),
        ...SKIP_BLOCKS.map((b) => h('option', { value: b }, b)))),
      field('Replace by', h('select', { id: 'knob-mode' }, h('option', { value: 'zero' }, 'zeros'), h('option', { value: 'mean' }, 'its mean'))),
    ],
    token_weight: () => [
      field('Word', input('knob-word', { type: 'text', value: 'red', size: 10 })),
      field('× weight', input('knob-weight', { type: 'number', min: 0, max: 3, step: 0.25, value: 0 })),
    ],
    swap_prompt: () => [
      field('New caption', input('knob-prompt', { type: 'text', value: 'a large blue square at the top left on a black background', size: 40 })),
    ],
    cache: () => [
      field('Full UNet every', input('knob-every', { type: 'range', min: 1, max: 10, step: 1, value: 3 })),
      h('output', { id: 'knob-every-value', for: 'knob-every' }, '3 steps'),
    ],
    guidance: () => [field('Scale', input('knob-scale', { type: 'number', min: 0, max: 20, step: 0.5, value: 1 }))],
    negative: () => [field('Negative caption', input('knob-prompt', { type: 'text', value: 'a red circle', size: 30 }))],
  };

  function pickKind() {
    says.textContent = KINDS[kind.value].says;
    params.replaceChildren(...controls[kind.value]());
    fromStep.value = kind.value === 'swap_prompt' ? '10' : '0';
  }

  params.addEventListener('input', (ev) => {
    if (ev.target.id === 'knob-every') root.querySelector('#knob-every-value').textContent = `${ev.target.value} steps`;
  });

  function val(id) {
    return root.querySelector(`#${id}`).value;
  }

  function intervention() {
    const k = kind.value;
    const out = { kind: k, from_step: Number(fromStep.value) || 0 };
    if (toStep.value !== '') out.to_step = Number(toStep.value);
    if (k === 'scale') Object.assign(out, { blocks: val('knob-blocks'), weight: Number(val('knob-weight')) });
    if (k === 'cut_skip') Object.assign(out, { blocks: val('knob-skip') === 'all' ? 'all' : [val('knob-skip')], mode: val('knob-mode') });
    if (k === 'token_weight') Object.assign(out, { word: val('knob-word'), weight: Number(val('knob-weight')) });
    if (k === 'swap_prompt' || k === 'negative') out.prompt = val('knob-prompt');
    if (k === 'cache') out.every = Number(val('knob-every'));
    if (k === 'guidance') out.scale = Number(val('knob-scale'));
    return out;
  }

  function showError(e) {
    error.hidden = !e;
    error.textContent = e ? e.message : '';
  }

  function figure(src, title, reading, id) {
    return h('figure', { class: 'knob-figure' }, pixels(src, 160, title, id),
      h('figcaption', {}, h('b', {}, title), reading ? h('span', { class: 'knob-reading' }, reading) : null));
  }

  let shown = null; // the request whose run is on screen: a lesson's Knobs state

  // One shape for both models' answers: the twin's /api/generate (with its readings) and a checkpoint job's result.
  function fromTwin(data) {
    const x = data.experiment;
    return { ...x, image: data.image, reading: data.reading.text, baselineReading: x.baseline_reading.text, ms: data.timings.total_ms };
  }

  function fromCheckpoint(r) {
    return { ...r, same_reading: null, reading: null, baselineReading: null, macs: null, ms: r.timings.total_ms };
  }

  function show(x) {
    const same = x.same_reading == null
      ? h('span', { id: 'knob-same', class: 'none', title: x.verdict_reason }, 'no reader’s verdict on a checkpoint’s pictures')
      : h('span', { id: 'knob-same', class: x.same_reading ? 'same' : 'changed' },
        x.same_reading ? 'the reader sees the same' : 'the reader’s verdict changed');
    const lines = [
      h('span', { id: 'knob-ssim' }, `SSIM ${x.ssim.toFixed(3)}`), ' · ',
      h('span', { id: 'knob-mse' }, `MSE ${x.mse.toFixed(4)}`), ' · ', same,
    ];
    if (x.macs) {
      lines.push(' · ', h('span', { id: 'knob-macs' },
        `UNet MACs saved ${(100 * x.macs.saved_fraction).toFixed(0)} % (${x.macs.full_calls} full, ${x.macs.shallow_calls} shallow calls)`));
    }
    output.hidden = false;
    output.replaceChildren(
      h('div', { class: 'knob-figures' },
        figure(x.baseline, 'Baseline (same seed)', x.baselineReading, 'knob-baseline'),
        figure(x.image, 'With the knob', x.reading, 'knob-result'),
        figure(x.difference, 'Difference (|a − b| ×2)', null, 'knob-difference')),
      h('p', { class: 'knob-metrics', id: 'knob-metrics' }, ...lines));
    status.textContent = `baseline and knob run: ${x.ms < 1000 ? `${Math.round(x.ms)} ms` : `${(x.ms / 1000).toFixed(1)} s`}`;
  }

  async function run() {
    const body = {
      prompt: caption.value.trim(), seed: Number(seed.value), steps: Number(steps.value), guidance: Number(guidance.value),
      interventions: [intervention()],
    };
    go.disabled = true;
    status.textContent = 'Running the baseline and the knob…';
    showError(null);
    announce('knobs', 'running');
    try {
      if (choice.model === 'checkpoint') {
        const result = await runOnCheckpoint({ ...body, image_size: choice.imageSize }, (snap) => {
          const p = snap.progress;
          status.textContent = snap.state === 'queued' ? 'queued' : `${p.phase}${p.total ? `: ${p.done} of ${p.total} steps` : ''}`;
        });
        show(fromCheckpoint(result));
        shown = null; // a lesson's Knobs state is the twin's: a checkpoint is the server's own file
      } else {
        show(fromTwin(await api.generate({ ...body, return: ['x0'] })));
        shown = { prompt: body.prompt, seed: body.seed, steps: body.steps, guidance: body.guidance, interventions: body.interventions };
      }
      announce('knobs', 'done');
    } catch (e) {
      showError(e);
      status.textContent = '';
      announce('knobs', 'error');
    } finally {
      go.disabled = false;
    }
  }

  // ---- the sweep: the U's blocks painted by the effect of removing each --------------------------------------
  function drawSweep(result) {
    const effects = new Map(result.effects.map((e) => [e.target, e]));
    const max = Math.max(1e-6, ...result.effects.map((e) => e.ssim_drop));
    const cell = (path, label) => {
      const e = effects.get(path);
      const share = e ? e.ssim_drop / max : 0;
      const title = e
        ? `${path}: SSIM drop ${e.ssim_drop.toFixed(3)}, reading changed on ${(100 * e.verdict_change).toFixed(0)} % of pictures`
        : `${path}: not removed in this sweep`;
      return h('div', {
        class: `knob-u-cell${e ? '' : ' off'}`, dataset: { path }, title,
        style: e ? `background: rgba(192, 57, 43, ${(0.08 + 0.92 * share).toFixed(3)}); color: ${share > 0.55 ? '#fff' : 'inherit'}` : null,
      }, h('span', {}, label), e ? h('span', { class: 'knob-u-value' }, e.ssim_drop.toFixed(2)) : null);
    };
    const down = [0, 1, 2, 3, 4, 5].map((i) => cell(`input_blocks.${i}`, `IN${String(i).padStart(2, '0')}`));
    const up = [5, 4, 3, 2, 1, 0].map((i) => cell(`output_blocks.${i}`, `OUT${String(i).padStart(2, '0')}`));
    const rows = down.map((d, i) => h('div', { class: 'knob-u-row' }, d, h('span', { class: 'knob-u-gap' }), up[i]));
    sweepOut.replaceChildren(
      h('p', { class: 'hint' }, result.what === 'skips'
        ? 'Colour by: effect of cutting the skip into each output block (mean SSIM drop; darker = larger).'
        : 'Colour by: effect of removing each block (mean SSIM drop against the baseline; darker = larger).'),
      h('div', { class: 'knob-u', id: 'knob-u' }, ...rows,
        h('div', { class: 'knob-u-row mid' }, cell('middle_block', 'M00'))),
      h('p', { class: 'knob-metrics' }, `${result.pictures} pictures, ${result.steps} steps; largest effect: ${result.ranking.slice(0, 3).join(', ')}`));
  }

  // The sweep is also run from "Colour by: effect of removing" (effect_overlay.js): one sweep at a time, and
  // whoever listens hears its progress and its result.
  const listeners = new Set();
  let running = null;
  const tell = (event) => listeners.forEach((fn) => fn(event));

  function sweep(what = sweepWhat.value) {
    if (!running) running = runSweep(what).finally(() => { running = null; });
    return running;
  }

  async function runSweep(what) {
    sweepWhat.value = what;
    sweepGo.disabled = true;
    showError(null);
    announce('sweep', 'running');
    const body = {
      prompts: [caption.value.trim()], seeds: [0, 1, 2, 3, 4, 5, 6, 7], steps: 20, guidance: Number(guidance.value), what,
    };
    try {
      const job = await api.startAblation(body);
      let snap = job;
      while (snap.state === 'queued' || snap.state === 'running') {
        sweepStatus.textContent = `${snap.state}: ${snap.progress.done} of ${snap.progress.total || '…'}`;
        tell({ state: 'running', what, done: snap.progress.done, total: snap.progress.total, request: body });
        await new Promise((r) => setTimeout(r, 400));
        snap = await api.getAblation(job.id);
      }
      if (snap.state !== 'done') throw new Error(snap.error || 'the sweep failed');
      sweepStatus.textContent = 'done';
      drawSweep(snap.result);
      tell({ state: 'done', result: snap.result, request: body });
      announce('sweep', 'done');
    } catch (e) {
      showError(e);
      sweepStatus.textContent = '';
      tell({ state: 'error', message: e.message });
      announce('sweep', 'error');
    } finally {
      sweepGo.disabled = false;
    }
  }

  root.replaceChildren(
    h('div', { class: 'act-head' }, h('h2', {}, 'Knobs'), status),
    h('p', { class: 'hint' }, 'Change one thing in the twin’s forward pass (or the server’s checkpoint’s, when it has one), run the same seed, and compare. ',
      'The baseline is the same caption and seed with nothing changed.'),
    h('div', { class: 'gen-form knob-form' },
      h('label', { class: 'field gen-caption-field', for: 'knob-caption' }, 'Caption ', caption),
      field('Seed', seed), field('Steps', steps), field('Guidance', guidance), choice.element),
    h('div', { class: 'gen-form knob-form' }, field('Knob', kind), params, field('From step', fromStep), field('to', toStep), go),
    says, error, output,
    h('div', { class: 'knob-sweep-head' }, h('h3', {}, 'Remove each in turn'), field('Remove', sweepWhat), sweepGo, sweepStatus),
    sweepOut,
  );
  kind.addEventListener('change', pickKind);
  go.addEventListener('click', run);
  sweepGo.addEventListener('click', () => sweep());
  pickKind();

  // An intervention's fields → the control that holds each (cut_skip's blocks are its "Skip into" choice).
  const FIELD_CONTROL = { weight: 'knob-weight', mode: 'knob-mode', word: 'knob-word', prompt: 'knob-prompt', every: 'knob-every', scale: 'knob-scale' };

  return {
    /** Offer the server's checkpoint as a model (knobs_checkpoint.js), when GET /api/weights reports one. */
    offerCheckpoint: choice.offer,
    /** Run the ablation sweep with the panel's caption and guidance ('blocks' or 'skips'); the running one if any. */
    sweep,
    /** fn({state: 'running', done, total} | {state: 'done', result} | {state: 'error', message}) on every change. */
    onSweep: (fn) => listeners.add(fn),
    /** The run on screen as a lesson's Knobs state ({prompt, seed, steps, guidance, interventions: [one]}), or null
     * when none is shown or the view is scrolled out of sight. */
    current() {
      if (!shown || output.hidden) return null;
      const r = root.getBoundingClientRect();
      if (r.bottom <= 0 || r.top >= window.innerHeight) return null;
      return structuredClone(shown);
    },
    /** A lesson's Knobs state: the form filled with it (its one intervention's knob and fields), the view shown and
     * the run made; resolves when it is drawn (or its error shown). */
    async show(want) {
      root.scrollIntoView({ block: 'start' });
      caption.value = want.prompt;
      for (const [el, key] of [[seed, 'seed'], [steps, 'steps'], [guidance, 'guidance']]) if (want[key] != null) el.value = String(want[key]);
      const iv = want.interventions[0];
      kind.value = iv.kind;
      pickKind();
      fromStep.value = String(iv.from_step ?? 0);
      toStep.value = iv.to_step != null ? String(iv.to_step) : '';
      if (iv.blocks != null) {
        const id = iv.kind === 'cut_skip' ? 'knob-skip' : 'knob-blocks';
        root.querySelector(`#${id}`).value = Array.isArray(iv.blocks) ? iv.blocks[0] : iv.blocks;
      }
      for (const [key, id] of Object.entries(FIELD_CONTROL)) if (iv[key] != null) root.querySelector(`#${id}`).value = String(iv[key]);
      if (iv.every != null) root.querySelector('#knob-every-value').textContent = `${iv.every} steps`;
      await run();
    },
  };
}
