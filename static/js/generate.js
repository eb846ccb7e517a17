// generate.js — the "Generate" view: the trained twin's denoising loop, opened. A caption (words picked from the
// twin's vocabulary, GET /api/twin), a seed, steps, guidance and sampler go to POST /api/generate; the answer's
// per-step x_t, ε̂ and x̂₀ fill a filmstrip and a scrubber, and "Look inside at this step" captures that step's UNet
// call (POST /api/activations/capture with `generation`) and draws it with activation_views.js: the word heat maps
// and the block outputs while the picture forms. Only drawing and requests: every number and picture is the server's.

import * as api from './api.js';
import { renderCapture } from './activation_views.js';
import { h } from './dom.js';
import { announce } from './status.js';

const ROWS = [
  ['x_t', 'x_t', 'the noisy picture the step starts from'],
  ['eps', 'ε̂', 'the noise the UNet predicts in it (guided)'],
  ['x0', 'x̂₀', 'the clean picture that prediction implies'],
];
const LOOK_POINTS = ['@cross-maps', '@outputs'];

/** A picture from a data: URL, enlarged without smoothing to `size` px. */
function pixels(src, size, alt, attrs = {}) {
  return h('img', { class: 'gen-pixels', src, alt, width: size, height: size, ...attrs });
}

function numberField(id, label, { min, max, step, value, title }) {
  const input = h('input', { id, type: 'number', min, max, step, value, inputmode: 'decimal', title });
  return [h('label', { class: 'field inline', for: id }, label, ' ', input), input];
}

/** root: the <section id="generate">. */
export function createGenerate(root) {
  let info = null; // GET /api/twin
  let result = null; // the last POST /api/generate answer, with the request that made it
  let token = 0;

  const status = h('span', { class: 'status', role: 'status', 'aria-live': 'polite', id: 'gen-status' });
  const caption = h('input', {
    id: 'gen-caption',
    type: 'text',
    list: 'gen-examples',
    autocomplete: 'off',
    spellcheck: 'false',
    value: 'a large red circle at the top left on a black background',
    'aria-describedby': 'gen-words-hint',
  });
  const examples = h('datalist', { id: 'gen-examples' });
  const [seedField, seed] = numberField('gen-seed', 'Seed', { min: 0, max: 2147483647, step: 1, value: 0 });
  const [stepsField, steps] = numberField('gen-steps', 'Steps', { min: 1, max: 200, step: 1, value: 50 });
  const [guideField, guidance] = numberField('gen-guidance', 'Guidance', {
    min: 0, max: 20, step: 0.5, value: 3,
    title: 'classifier-free guidance: 1 follows the caption alone, more pushes away from the empty caption (two UNet passes a step)',
  });
  const sampler = h('select', { id: 'gen-sampler', 'aria-label': 'Sampler' },
    h('option', { value: 'ddim' }, 'DDIM'), h('option', { value: 'euler' }, 'Euler'));
  const go = h('button', { type: 'button', id: 'gen-go', class: 'primary' }, 'Generate');
  const error = h('p', { class: 'gen-error', role: 'alert', id: 'gen-error', hidden: true });
  const words = h('div', { class: 'gen-words', id: 'gen-words', role: 'group', 'aria-label': 'The twin’s words' });

  const picture = h('figure', { class: 'gen-picture', id: 'gen-picture' });
  const scrub = h('input', { id: 'gen-scrub', type: 'range', min: 0, max: 0, step: 1, value: 0, 'aria-label': 'Step' });
  const stepLine = h('p', { class: 'gen-step-line', id: 'gen-step-line' });
  const stepImages = h('div', { class: 'gen-step-images', id: 'gen-step-images' });
  const look = h('button', { type: 'button', id: 'gen-look' }, 'Look inside at this step');
  const film = h('div', { class: 'gen-film', id: 'gen-film', role: 'group', 'aria-label': 'Every step' });
  const inside = h('div', { class: 'gen-inside', id: 'gen-inside' });
  const output = h('div', { class: 'gen-output', hidden: true },
    h('div', { class: 'gen-top' }, picture,
      h('div', { class: 'gen-scrubber' }, h('label', { for: 'gen-scrub', class: 'gen-scrub-label' }, 'Step'), scrub,
        stepLine, stepImages, look)),
    film, inside);

  root.replaceChildren(
    h('div', { class: 'act-head' }, h('h2', {}, 'Generate'), h('span', { class: 'muted', id: 'gen-model' }), status),
    h('p', { class: 'hint' },
      'The twin is a small model with Stable Diffusion’s UNet (ResBlocks, cross-attention to the caption’s tokens, ',
      'skips, SD’s 1000-step noise schedule), trained on this machine on pictures of coloured shapes the project draws. ',
      'It works on 32×32 pixels instead of a VAE’s latent. Watch it turn noise into the caption, step by step.'),
    h('div', { class: 'gen-form' },
      h('label', { class: 'field gen-caption-field', for: 'gen-caption' }, 'Caption ', caption), examples,
      seedField, stepsField, guideField, h('label', { class: 'field inline', for: 'gen-sampler' }, 'Sampler ', sampler), go),
    h('p', { class: 'hint', id: 'gen-words-hint' }, 'Its words (click one to add it):'), words, error, output,
  );

  function showError(e) {
    error.hidden = !e;
    error.textContent = e ? e.message : '';
    caption.setAttribute('aria-invalid', e && e.field === 'prompt' ? 'true' : 'false');
  }

  function fillWords() {
    words.replaceChildren(...Object.entries(info.vocabulary).map(([role, list]) => h('span', { class: 'gen-role' },
      h('span', { class: 'muted' }, `${role}: `),
      ...list.map((w) => h('button', { type: 'button', class: 'gen-word', dataset: { word: w } }, w)))));
    examples.replaceChildren(...[...info.examples.one_object, ...info.examples.two_objects].map((c) => h('option', { value: c })));
    const rec = info.training;
    root.querySelector('#gen-model').textContent = rec && rec.steps_done
      ? `${info.preset}: trained ${rec.steps_done} steps (${Math.round(rec.wall_seconds / 60)} min on a CPU)` : info.preset;
  }

  words.addEventListener('click', (ev) => {
    const w = ev.target.closest('.gen-word')?.dataset.word;
    if (!w) return;
    caption.value = `${caption.value.trim()} ${w}`.trim();
    caption.focus();
  });

  function requestBody() {
    return {
      prompt: caption.value.trim(),
      seed: Number(seed.value),
      steps: Number(steps.value),
      guidance: Number(guidance.value),
      sampler: sampler.value,
    };
  }

  async function run() {
    if (!info) return;
    const body = requestBody();
    announce('generate', 'running');
    const mine = ++token;
    go.disabled = true;
    status.textContent = 'Generating…';
    showError(null);
    try {
      const data = await api.generate(body);
      if (mine !== token) return;
      result = { body, data };
      draw();
      announce('generate', 'done');
      status.textContent = `${data.steps} steps, ${data.unet_calls} UNet calls, ${Math.round(data.timings.total_ms)} ms`;
    } catch (e) {
      if (mine !== token) return;
      showError(e);
      status.textContent = '';
      announce('generate', 'error');
    } finally {
      if (mine === token) go.disabled = false;
    }
  }

  function draw() {
    const { data } = result;
    output.hidden = false;
    picture.replaceChildren(
      pixels(data.image, 192, `the picture for “${data.prompt}”`, { id: 'gen-image' }),
      h('figcaption', {},
        h('span', { class: 'muted' }, 'The attribute reader sees: '), h('span', { id: 'gen-reading' }, data.reading.text)));
    scrub.max = String(data.per_step.length - 1);
    scrub.value = String(data.per_step.length - 1);
    film.replaceChildren(...ROWS.map(([key, sym, words]) => h('div', { class: 'gen-film-row', dataset: { row: key } },
      h('span', { class: 'gen-film-label', title: words }, sym),
      ...data.per_step.map((s) => s[key]
        ? h('button', { type: 'button', class: 'gen-thumb', dataset: { step: s.index }, title: `step ${s.index + 1}, t = ${s.t}` },
          pixels(s[key], 40, `${sym} at step ${s.index + 1}`))
        : null))));
    inside.replaceChildren();
    showStep();
  }

  function showStep() {
    const { data } = result;
    const i = Number(scrub.value);
    const s = data.per_step[i];
    for (const b of film.querySelectorAll('.gen-thumb')) b.classList.toggle('current', Number(b.dataset.step) === i);
    stepLine.textContent = `step ${i + 1} of ${data.per_step.length} · the UNet is called at t = ${s.t} of SD's 1000`;
    stepImages.replaceChildren(...ROWS.map(([key, sym, words]) => s[key]
      ? h('figure', { dataset: { row: key } }, pixels(s[key], 128, `${sym} at step ${i + 1}`), h('figcaption', {}, h('b', {}, sym), ` ${words}`))
      : null));
    announce('genStep', String(i));
  }

  scrub.addEventListener('input', showStep);
  film.addEventListener('click', (ev) => {
    const b = ev.target.closest('.gen-thumb');
    if (!b) return;
    scrub.value = b.dataset.step;
    showStep();
  });

  async function lookInside() {
    if (!result) return;
    const { body } = result;
    const step = Number(scrub.value);
    status.textContent = `Capturing step ${step + 1}…`;
    look.disabled = true;
    try {
      const capture = await api.captureActivations({
        preset: info.preset, prompt: body.prompt, points: LOOK_POINTS,
        generation: { seed: body.seed, steps: body.steps, guidance: body.guidance, sampler: body.sampler, step },
      });
      inside.replaceChildren(h('h3', {}, `Inside the UNet at step ${step + 1} (t = ${result.data.per_step[step].t})`));
      const box = h('div', {});
      inside.append(box);
      await renderCapture(box, capture, { catalog: new Map(), onPick: () => {} }).drawn;
      status.textContent = `Captured step ${step + 1}`;
      announce('look', 'done');
    } catch (e) {
      showError(e);
      status.textContent = '';
      announce('look', 'error');
    } finally {
      look.disabled = false;
    }
  }

  go.addEventListener('click', run);
  look.addEventListener('click', lookInside);
  caption.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') run();
  });

  // The twin's words are asked for once the view scrolls into sight; a generation starts only when asked (it runs
  // in the capture process, which other views share).
  let asked = null; // the promise of GET /api/twin, asked once
  const loadInfo = () => (asked ??= api.getTwin().then((data) => {
    info = data;
    fillWords();
    announce('twin', 'ready');
  }).catch((e) => {
    showError(e);
    go.disabled = true;
    announce('twin', 'error');
  }));
  const seen = new IntersectionObserver((entries) => {
    if (!entries.some((e) => e.isIntersecting)) return;
    seen.disconnect();
    loadInfo();
  });
  seen.observe(root);

  return {
    /** The generation on screen as a lesson's Generate state ({prompt, seed, steps, guidance, sampler, step}: the
     * request that made it and the step the scrubber shows), or null when none is shown or the view is scrolled out
     * of sight (a teacher recording a view of the diagram has not opened this one). */
    current() {
      if (!result || output.hidden) return null;
      const r = root.getBoundingClientRect();
      if (r.bottom <= 0 || r.top >= window.innerHeight) return null;
      return { ...result.body, step: Number(scrub.value) };
    },
    /** A lesson's Generate state ({prompt, seed?, steps?, guidance?, sampler?, step?}): the form filled, the view
     * shown, the generation run and the scrubber at `step` (0-based; the last step when not given). */
    async show(want) {
      root.scrollIntoView({ block: 'start' });
      await loadInfo();
      caption.value = want.prompt;
      for (const [input, key] of [[seed, 'seed'], [steps, 'steps'], [guidance, 'guidance']]) {
        input.value = String(want[key] ?? info?.defaults?.[key] ?? input.value);
      }
      sampler.value = want.sampler ?? info?.defaults?.sampler ?? sampler.value;
      await run();
      if (result && want.step != null) {
        scrub.value = String(Math.min(want.step, result.data.per_step.length - 1));
        showStep();
      }
    },
  };
}
