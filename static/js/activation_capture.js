// activation_capture.js — the "One real forward, captured" form of the Activations panel: its controls (noise or
// images, timesteps, prompt, which points), the server's 4xx reasons shown beside the field they name, and the
// two jobs it starts: a capture (POST /api/activations/capture, drawn by activation_views.js) and an export of
// the chosen points as .safetensors. activations.js owns the catalog and the list; it hands this form the model
// body, the catalog of the model on screen and the points ticked in the list.

import * as api from './api.js';
import { renderCapture } from './activation_views.js';
import { h } from './dom.js';
import { announce } from './status.js';

const GROUPS = [
  ['@outputs', 'block outputs', 'the output of every block: what the U passes on'],
  ['@cross-maps', 'cross-attention maps', 'pixels × text tokens: the word heat maps come from these'],
  ['@recommended', 'recommended by the study', 'the activations “Not All Diffusion Model Activations…” recommends for this model'],
];
const DEFAULT_GROUPS = ['@outputs', '@cross-maps'];
// The server's error field → the form control its reason is shown beside.
const FIELD_SLOT = {
  image: 'image',
  images: 'image',
  prompt: 'prompt',
  timestep: 'timestep',
  compare_timestep: 'compare',
  seed: 'seed',
  points: 'points',
  export: 'points',
};

/** A field's text as the number it holds, or the text itself so the server can say what is wrong with it. */
function numberOrText(text) {
  const n = Number(text);
  return text.trim() !== '' && Number.isFinite(n) ? n : text;
}

function readDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error ?? new Error(`could not read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

/**
 * The form and the results area, wired. ctx: {status (the panel's status line), modelBody() (the model on screen
 * as a request), getCatalog() ({key, data, byName} or null), ticked (the Set of points ticked in the list),
 * getCurrent() (the point picked last), pick(name) (picks a point in the list and on the U)}.
 */
export function createCapture({ status, modelBody, getCatalog, ticked, getCurrent, pick }) {
  let view = null; // the drawn capture: {key, showHistogram}
  let busy = false;

  const errorSlot = (name) => h('span', { class: 'field-error', id: `act-error-${name}`, role: 'alert', hidden: true });
  const slots = Object.fromEntries(['image', 'seed', 'timestep', 'compare', 'prompt', 'points'].map((n) => [n, errorSlot(n)]));

  const sourceNoise = h('input', { type: 'radio', name: 'act-source', value: 'noise', checked: true });
  const sourceImage = h('input', { type: 'radio', name: 'act-source', value: 'image' });
  const seed = h('input', { id: 'act-seed', type: 'number', min: 0, step: 1, value: 0, 'aria-describedby': 'act-error-seed' });
  const image = h('input', { id: 'act-image', type: 'file', accept: 'image/png,image/jpeg,image/webp,image/bmp,image/gif', multiple: true, 'aria-describedby': 'act-error-image' });
  const thumbs = h('span', { class: 'act-thumbs' });
  const timestep = h('input', { id: 'act-timestep', type: 'number', min: 0, max: 999, step: 1, value: 261, 'aria-describedby': 'act-error-timestep' });
  const compareOn = h('input', { id: 'act-compare-on', type: 'checkbox', checked: true });
  const compare = h('input', { id: 'act-compare', type: 'number', min: 0, max: 999, step: 1, value: 281, 'aria-label': 'Second timestep', 'aria-describedby': 'act-error-compare' });
  const prompt = h('input', { id: 'act-prompt', type: 'text', value: 'a photograph of a cat', autocomplete: 'off', 'aria-describedby': 'act-error-prompt' });
  const groupBoxes = new Map(
    GROUPS.map(([g]) => [g, h('input', { type: 'checkbox', value: g, checked: DEFAULT_GROUPS.includes(g) })]),
  );
  const groupCounts = new Map(GROUPS.map(([g]) => [g, h('span', { class: 'muted' })]));
  const tickedLine = h('span', { class: 'muted act-ticked' });
  const captureButton = h('button', { type: 'submit', class: 'primary', id: 'act-capture' }, 'Capture');
  const exportButton = h('button', { type: 'button', id: 'act-export', title: 'The full tensors of the chosen points, for every chosen image, as one .safetensors file' }, 'Export .safetensors');
  const formError = h('p', { class: 'error', role: 'alert', id: 'act-form-error', hidden: true });
  const results = h('div', { class: 'act-results', id: 'act-results', 'aria-live': 'polite' });

  const field = (label, control, slot, extra = null) =>
    h('div', { class: 'act-field' }, h('label', { for: control.id }, label), control, extra, slot);

  const form = h(
    'form',
    { class: 'act-form', 'aria-label': 'Capture one forward', novalidate: true },
    h('h3', {}, 'One real forward, captured'),
    h(
      'fieldset',
      { class: 'act-source' },
      h('legend', {}, 'Input'),
      h('label', { class: 'inline' }, sourceNoise, ' seeded noise latent'),
      h('label', { class: 'inline' }, sourceImage, ' image (PNG, JPEG, WebP, BMP, GIF; several for the export)'),
      h('div', { class: 'act-field act-inline' }, h('label', { for: 'act-seed' }, 'Seed'), seed, slots.seed),
      h('div', { class: 'act-field act-inline' }, h('label', { for: 'act-image' }, 'Image'), image, thumbs, slots.image),
    ),
    h(
      'div',
      { class: 'act-row' },
      field('Timestep (0 clean – 999 noise)', timestep, slots.timestep),
      h(
        'div',
        { class: 'act-field' },
        h('label', { for: 'act-compare-on' }, compareOn, ' Also at timestep (cosine similarity)'),
        compare,
        h('span', { class: 'muted act-note' }, '261 and 281 are neighbouring steps of a 50-step sampler'),
        slots.compare,
      ),
    ),
    field('Prompt (at most 77 CLIP tokens)', prompt, slots.prompt),
    h(
      'fieldset',
      { class: 'act-groups', 'aria-describedby': 'act-error-points' },
      h('legend', {}, 'Points to capture'),
      GROUPS.map(([g, label, title]) => h('label', { class: 'inline', title }, groupBoxes.get(g), ` ${label} `, groupCounts.get(g))),
      tickedLine,
      slots.points,
    ),
    h('div', { class: 'act-buttons' }, captureButton, exportButton),
    formError,
  );

  function clearErrors() {
    for (const slot of Object.values(slots)) {
      slot.hidden = true;
      slot.textContent = '';
    }
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    formError.hidden = true;
    formError.textContent = '';
  }

  const CONTROL_OF = { image, seed, timestep, compare, prompt };

  /** The server's 4xx reason beside the field it names (or under the form when it names none we show). */
  function showError(err) {
    const slot = FIELD_SLOT[String(err.field ?? '').split('.')[0]];
    if (slot && slots[slot]) {
      slots[slot].textContent = err.reason ?? err.message;
      slots[slot].hidden = false;
      CONTROL_OF[slot]?.setAttribute('aria-invalid', 'true');
    } else {
      formError.textContent = err.message;
      formError.hidden = false;
    }
  }

  function chosenPoints() {
    return [...[...groupBoxes].filter(([, box]) => box.checked && !box.disabled).map(([g]) => g), ...ticked];
  }

  async function requestBody() {
    const out = { ...modelBody(), points: chosenPoints(), seed: numberOrText(seed.value), timestep: numberOrText(timestep.value) };
    if (compareOn.checked) out.compare_timestep = numberOrText(compare.value);
    if (!prompt.disabled) out.prompt = prompt.value;
    let images = [];
    if (sourceImage.checked) {
      if (!image.files.length) {
        const err = new Error('choose an image file, or take the seeded noise latent');
        err.field = 'image';
        err.reason = err.message;
        throw err;
      }
      images = await Promise.all([...image.files].map(readDataUrl));
      out.image = images[0];
    }
    return { out, images };
  }

  function setBusy(on, text = '') {
    busy = on;
    captureButton.disabled = on;
    exportButton.disabled = on;
    status.textContent = text;
  }

  function clearResults() {
    view = null;
    results.replaceChildren();
  }

  /** Runs one server job with the buttons off: body[flag] is "running", then what `job` returns, or "error" with
   * the server's reason shown. The capture and the export end the same way. */
  async function runJob(flag, text, job) {
    setBusy(true, text);
    announce(flag, 'running');
    try {
      announce(flag, await job());
    } catch (err) {
      status.textContent = '';
      showError(err);
      announce(flag, 'error');
    } finally {
      busy = false;
      captureButton.disabled = false;
      exportButton.disabled = false;
    }
  }

  async function runCapture() {
    const catalog = getCatalog();
    if (busy || !catalog) return;
    clearErrors();
    const key = catalog.key;
    let req;
    try {
      ({ out: req } = await requestBody());
    } catch (err) {
      showError(err);
      return;
    }
    await runJob('capture', 'Capturing: one forward of the UNet on the server…', async () => {
      const result = await api.captureActivations(req);
      if (getCatalog()?.key !== key) {
        // The model changed meanwhile: this capture is of another model.
        status.textContent = '';
        return 'stale';
      }
      const current = getCurrent();
      const drawn = renderCapture(results, result, { catalog: getCatalog().byName, onPick: pick, image: req.image ?? null });
      view = { key, showHistogram: drawn.showHistogram };
      const first = current && result.activations.some((a) => a.name === current) ? current : result.activations[0]?.name;
      await Promise.all([drawn.drawn, first ? drawn.showHistogram(first) : null]);
      status.textContent = `Captured ${result.activations.length} points in ${(result.timings.total_ms / 1000).toFixed(1)} s.`;
      return 'done';
    });
  }

  async function runExport() {
    if (busy || !getCatalog()) return;
    clearErrors();
    let req;
    let images;
    try {
      ({ out: req, images } = await requestBody());
    } catch (err) {
      showError(err);
      return;
    }
    // The export's points are those chosen for the capture; its images all the files chosen (one tensor each,
    // stacked on the first axis). It writes the tensors at the first timestep only.
    const exportBody = { ...req, export: req.points, points: [] };
    delete exportBody.compare_timestep;
    if (images.length > 1) {
      delete exportBody.image;
      exportBody.images = images;
    }
    await runJob('exported', 'Exporting: one forward per image on the server…', async () => {
      const blob = await api.exportActivations(exportBody);
      const { model: shown } = getCatalog().data; // the model on screen when the file arrives
      const model = (shown.preset ?? shown.weights ?? 'model').replace(/\.safetensors$/, '');
      const name = `activations-${model}-t${req.timestep}.safetensors`;
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      status.textContent = `Saved ${name} (${blob.size.toLocaleString('en-US')} bytes).`;
      return 'done';
    });
  }

  function showTicked() {
    tickedLine.textContent = ticked.size ? `+ ${ticked.size} ticked in the list` : 'or tick points in the list';
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    runCapture();
  });
  exportButton.addEventListener('click', runExport);
  compareOn.addEventListener('change', () => {
    compare.disabled = !compareOn.checked;
  });
  image.addEventListener('change', () => {
    if (image.files.length) sourceImage.checked = true;
    for (const img of thumbs.querySelectorAll('img')) URL.revokeObjectURL(img.src);
    thumbs.replaceChildren(...[...image.files].slice(0, 4).map((f) => h('img', { src: URL.createObjectURL(f), alt: f.name, title: f.name })));
  });
  form.addEventListener('change', (e) => {
    if (e.target.name === 'act-source') clearErrors();
  });
  showTicked();

  return {
    form,
    results,
    showTicked,
    /** A new catalog: each group's count on its box (an empty group cannot be chosen); a prompt only where the
     * model reads text. */
    setCatalog(data) {
      for (const [g, el] of groupCounts) {
        const n = data.groups[g]?.length ?? 0;
        el.textContent = `(${n})`;
        groupBoxes.get(g).disabled = n === 0;
      }
      prompt.disabled = data.context_tokens == null;
    },
    /** Drop a drawn capture that is not of the catalog `key`. */
    clearUnless(key) {
      if (view && view.key !== key) clearResults();
    },
    /** The histogram of point `name` in the drawn capture, if there is one. */
    showHistogram(name) {
      view?.showHistogram(name);
    },
  };
}
