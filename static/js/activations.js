// activations.js — the "Activations" panel: the catalog of every named activation point of the model on screen
// (names, modules, shapes and who reads them all come from POST /api/activations/catalog; nothing is derived
// here), tied to the U both ways (a point picked here opens and selects its module on the diagram; a module
// selected on the diagram lists its points), and one real forward captured on the server (POST
// /api/activations/capture) drawn by activation_views.js, with its chosen points exported as .safetensors.
//
// It listens to the store and changes it only through select() and setExpanded(), like search does; main.js
// creates it with one call. The catalog is asked for once the panel scrolls into view (a model build in a worker).

import * as api from './api.js';
import { renderCapture } from './activation_views.js';
import { h } from './dom.js';
import { shapeText } from './format.js';
import { boxRect, pathToOpen } from './layout.js';

const GROUPS = [
  ['@outputs', 'block outputs', 'the output of every block: what the U passes on'],
  ['@cross-maps', 'cross-attention maps', 'pixels × text tokens: the word heat maps come from these'],
  ['@recommended', 'recommended by the study', 'the activations “Not All Diffusion Model Activations…” recommends for this model'],
];
const DEFAULT_GROUPS = ['@outputs', '@cross-maps'];
const FILTERS = [
  ['all', 'all points'],
  ['@outputs', 'block outputs'],
  ['@cross-maps', 'cross-attention maps'],
  ['used', 'read by published work'],
];
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

const STAGE_WORDS = { in: 'input', down: 'down', mid: 'middle', up: 'up', out: 'output' };

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

/** Where a point sits in words: "down level 1, repeat 0, transformer block 0". */
function placeText(p) {
  const parts = [STAGE_WORDS[p.stage] ?? p.stage];
  if (p.level != null) parts[0] += ` level ${p.level}`;
  if (p.repeat != null) parts.push(`repeat ${p.repeat}`);
  if (p.transformer_block != null) parts.push(`transformer block ${p.transformer_block}`);
  return parts.join(', ');
}

/**
 * root: the <section id="activations">. store: the page's store; diagram: the main diagram; getIndex(): the trace
 * index or null; weights: weights.js's object (info, matches(config)).
 */
export function createActivations(root, { store, diagram, getIndex, weights }) {
  const { state } = store;
  const body = document.body.dataset;
  const cache = new Map(); // model body JSON → catalog
  let catalog = null; // {key, data, byName}
  let loadToken = 0;
  let visible = false;
  let scope = null; // the module selected on the U whose points are listed, or null for all
  let current = null; // the point picked last
  let selfSelect = false; // our own store.select(): not a scope change
  const ticked = new Set(); // points chosen one by one in the list
  let view = null; // the drawn capture: {key, showHistogram}
  let busy = false;

  // ---- the panel's skeleton (built once) --------------------------------------------------------------------

  const status = h('span', { class: 'status', role: 'status', 'aria-live': 'polite', id: 'act-status' });
  const modelLine = h('span', { class: 'act-model muted' });
  const weightsBanner = h('p', { class: 'act-banner', role: 'note', id: 'act-weights-banner' });

  const search = h('input', {
    id: 'act-search',
    type: 'search',
    placeholder: 'cross-q, DIFT, output_blocks.4',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const filter = h('select', { id: 'act-filter', 'aria-label': 'Show' }, FILTERS.map(([v, t]) => h('option', { value: v }, t)));
  const count = h('span', { class: 'muted act-count', role: 'status', 'aria-live': 'polite' });
  const scopeText = h('span', {});
  const scopeClear = h('button', { type: 'button', class: 'linklike' }, 'Show all points');
  const scopeLine = h('p', { class: 'act-scope', hidden: true }, scopeText, ' ', scopeClear);
  const list = h('ul', { class: 'act-list', id: 'act-list', 'aria-label': 'Activation points' });
  const currentText = h('span', {});
  const toU = h('button', { type: 'button', class: 'linklike', title: 'Scroll up to the diagram' }, '↑ See it on the U');
  const currentLine = h('p', { class: 'act-current', hidden: true }, currentText, ' ', toU);

  const errorSlot = (name) => h('span', { class: 'field-error', id: `act-error-${name}`, role: 'alert', hidden: true });
  const slots = Object.fromEntries(['image', 'seed', 'timestep', 'compare', 'prompt', 'points'].map((n) => [n, errorSlot(n)]));

  const sourceNoise = h('input', { type: 'radio', name: 'act-source', value: 'noise', checked: true });
  const sourceImage = h('input', { type: 'radio', name: 'act-source', value: 'image' });
  const seed = h('input', { id: 'act-seed', type: 'number', min: 0, step: 1, value: 0, 'aria-describedby': 'act-error-seed' });
  const image = h('input', { id: 'act-image', type: 'file', accept: 'image/png,image/jpeg,image/webp', multiple: true, 'aria-describedby': 'act-error-image' });
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
      h('label', { class: 'inline' }, sourceImage, ' image (PNG, JPEG, WebP; several for the export)'),
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

  root.replaceChildren(
    h('div', { class: 'act-head' }, h('h2', {}, 'Activations'), modelLine, status),
    h(
      'p',
      { class: 'hint' },
      'Every point where an activation can be read, named as in “Not All Diffusion Model Activations Have Been ',
      'Evaluated as Discriminative Features”, with its module, its shape at this image size and who reads it. ',
      'Click a point to select its module on the U; select a module on the U to list its points.',
    ),
    weightsBanner,
    h(
      'div',
      { class: 'act-grid' },
      h(
        'div',
        { class: 'act-catalog' },
        h('div', { class: 'act-tools', role: 'search' }, h('label', { for: 'act-search' }, 'Find a point'), search, filter, count),
        scopeLine,
        currentLine,
        list,
      ),
      form,
    ),
    results,
  );

  // ---- the model asked about ----------------------------------------------------------------------------------

  /** The model on screen as an activations request: the server's weights when they are this architecture. */
  function modelBody() {
    const trace = state.trace;
    const custom = state.models.get(state.preset);
    const out = weights.matches(trace.config) ? { use_weights: true } : custom ? { config: custom.config } : { preset: state.preset };
    if (trace.input?.image_size) out.image_size = trace.input.image_size;
    else if (trace.input?.sample_size) out.sample_size = trace.input.sample_size;
    return out;
  }

  function showWeightsBanner() {
    const info = weights.info;
    const real = Boolean(state.trace && weights.matches(state.trace.config));
    weightsBanner.dataset.banner = real ? 'real' : 'random';
    weightsBanner.classList.toggle('act-banner-random', !real);
    weightsBanner.classList.toggle('act-banner-real', real);
    if (real) {
      weightsBanner.replaceChildren(
        h('strong', {}, `Real weights: ${info.file}. `),
        'Captures run this checkpoint: its VAE encodes the image and its text encoder the prompt, when the file holds them.',
      );
    } else {
      weightsBanner.replaceChildren(
        h('strong', {}, 'Random weights: the pictures show shapes, not meaning. '),
        info
          ? `The server's weights (${info.file}) are another architecture, so this model runs with seeded random weights and a noise text context.`
          : 'This server has no weights file, so captures run the UNet with seeded random weights and a noise text context. ',
        info ? '' : h('span', {}, 'Start it with ', h('code', {}, 'sdunet-explorer serve --weights FILE'), ' (a full checkpoint) for real activations.'),
      );
    }
  }

  // ---- the catalog ----------------------------------------------------------------------------------------------

  async function loadCatalog() {
    // Asked for once the panel has been seen; after that it follows the model even while scrolled away.
    if (!(visible || catalog) || !state.trace) return;
    const req = modelBody();
    const key = JSON.stringify(req);
    showWeightsBanner();
    if (catalog?.key === key) return;
    const mine = ++loadToken;
    body.activations = 'loading';
    status.textContent = 'Listing the activation points…';
    try {
      let data = cache.get(key);
      if (!data) {
        data = await api.getActivationCatalog(req);
        cache.set(key, data);
      }
      if (mine !== loadToken) return;
      catalog = {
        key,
        data,
        byName: new Map(data.points.map((p) => [p.name, p])),
        groups: new Map(Object.entries(data.groups).map(([g, names]) => [g, new Set(names)])),
      };
      rowCache = new Map();
      for (const name of [...ticked]) if (!catalog.byName.has(name)) ticked.delete(name);
      if (current && !catalog.byName.has(current)) current = null;
      if (view && view.key !== key) clearResults();
      scope = state.selection || null;
      const size = data.image_size.join('×');
      modelLine.textContent = `${data.model.weights ?? data.model.preset ?? 'custom model'} at ${size} px: ${data.count} points`;
      for (const [g, el] of groupCounts) {
        const n = data.groups[g]?.length ?? 0;
        el.textContent = `(${n})`;
        groupBoxes.get(g).disabled = n === 0;
      }
      prompt.disabled = data.context_tokens == null;
      status.textContent = '';
      renderList();
      body.activations = 'true';
    } catch (err) {
      if (mine !== loadToken) return;
      catalog = null;
      list.replaceChildren();
      modelLine.textContent = '';
      status.textContent = `Could not list the activation points: ${err.message}`;
      body.activations = 'error';
    }
  }

  function inScope(p, path) {
    const m = p.module || p.block_path;
    return m === path || m.startsWith(`${path}.`) || (p.module === '' && p.block_path === path);
  }

  /** The selected module, or its nearest ancestor that has points (a conv inside a ResBlock: the ResBlock). */
  function scopePath() {
    if (!scope || !catalog) return null;
    let path = scope;
    while (path) {
      if (catalog.data.points.some((p) => inScope(p, path))) return path;
      path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';
    }
    return '';
  }

  function matches(p, terms) {
    if (!terms.length) return true;
    const hay = [p.name, p.module, p.kind, p.description, p.block_path, shapeText(p.shape), p.layout, ...p.used_by].join(' ').toLowerCase();
    return terms.every((t) => hay.includes(t));
  }

  function passesFilter(p) {
    const f = filter.value;
    if (f === 'all') return true;
    if (f === 'used') return p.used_by.length > 0;
    return catalog.groups.get(f)?.has(p.name) ?? false;
  }

  // Rows are built once per catalog and reused by every filter (SDXL has 752 points).
  let rowCache = new Map();

  function pointRow(p) {
    let li = rowCache.get(p.name);
    if (!li) {
      li = buildRow(p);
      rowCache.set(p.name, li);
    }
    li.classList.toggle('current', p.name === current);
    return li;
  }

  function blockHead(path) {
    const key = `block:${path}`;
    if (!rowCache.has(key)) {
      rowCache.set(
        key,
        h('li', { class: 'act-block-head', dataset: { block: path } },
          h('button', { type: 'button', class: 'linklike', dataset: { selectBlock: path }, title: `Select ${path} on the U` }, path)),
      );
    }
    return rowCache.get(key);
  }

  function buildRow(p) {
    const box = h('input', { type: 'checkbox', checked: ticked.has(p.name), 'aria-label': `Capture ${p.name}`, dataset: { tick: p.name } });
    const pickButton = h(
      'button',
      { type: 'button', class: 'act-pick', dataset: { pick: p.name }, title: `Select ${p.module || p.block_path} on the U` },
      h('span', { class: 'act-name' }, p.name),
      h('span', { class: 'act-shape', dataset: { field: 'shape' } }, `${p.shape.join('×')} ${p.layout}`),
    );
    return h(
      'li',
      { class: 'act-point', dataset: { name: p.name, kind: p.kind, stage: p.stage } },
      box,
      h(
        'div',
        { class: 'act-point-body' },
        pickButton,
        h('span', { class: 'act-module' }, h('code', { dataset: { field: 'module' } }, p.module || `${p.block_path} (its input)`), ` · ${placeText(p)}`),
        h('span', { class: 'act-desc' }, p.description),
        p.used_by.length > 0 && h('ul', { class: 'act-uses' }, p.used_by.map((u) => h('li', { dataset: { field: 'used-by' } }, u))),
      ),
    );
  }

  function renderList() {
    if (!catalog) return;
    const terms = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const within = scopePath();
    if (scope && within != null) {
      const points = catalog.data.points.filter((p) => inScope(p, within));
      scopeText.textContent = within === scope
        ? `Points in ${scope} (selected on the U): ${points.length}.`
        : within
          ? `No point reads ${scope} itself; the points of ${within} around it: ${points.length}.`
          : `No activation point in ${scope}.`;
      scopeLine.hidden = false;
    } else {
      scopeLine.hidden = true;
    }
    const rows = [];
    let lastBlock = null;
    let n = 0;
    for (const p of catalog.data.points) {
      if (within != null && scope && (within === '' || !inScope(p, within))) continue;
      if (!passesFilter(p) || !matches(p, terms)) continue;
      if (p.block_path !== lastBlock) {
        lastBlock = p.block_path;
        rows.push(blockHead(p.block_path));
      }
      rows.push(pointRow(p));
      n += 1;
    }
    list.replaceChildren(...rows);
    list.dataset.count = String(n);
    list.dataset.query = search.value; // what the list shows (filtering waits for a pause in typing)
    count.textContent = n === catalog.data.count ? `${n} points` : `${n} of ${catalog.data.count}`;
    showTicked();
  }

  function showTicked() {
    tickedLine.textContent = ticked.size ? `+ ${ticked.size} ticked in the list` : 'or tick points in the list';
  }

  // ---- the U, both ways -------------------------------------------------------------------------------------

  /** Open the diagram down to `path` (its nearest drawn ancestor), select it and scroll the diagram to it; returns
   * the path selected, or null. */
  function selectOnU(path) {
    const ix = getIndex();
    if (!ix) return null;
    while (path && !ix.nodes.has(path)) path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';
    if (!path) return null;
    const open = new Set(state.expanded);
    const before = open.size;
    for (const q of pathToOpen(ix, path)) open.add(q);
    if (open.size !== before) store.setExpanded([...open]);
    selfSelect = true;
    try {
      store.select(path);
    } finally {
      selfSelect = false;
    }
    if (diagram.scene) diagram.reveal(boxRect(diagram.scene, path));
    root.dataset.shown = path;
    return path;
  }

  function pick(name) {
    const p = catalog?.byName.get(name);
    if (!p) return;
    current = name;
    for (const li of list.querySelectorAll('li.current')) li.classList.remove('current');
    const li = list.querySelector(`li[data-name="${CSS.escape(name)}"]`);
    if (li) {
      li.classList.add('current');
      // Scroll the list only (scrollIntoView would move the page too).
      if (li.offsetTop < list.scrollTop || li.offsetTop + li.offsetHeight > list.scrollTop + list.clientHeight) {
        list.scrollTop = li.offsetTop - list.clientHeight / 3;
      }
    }
    const shown = selectOnU(p.module || p.block_path);
    currentText.textContent = shown ? `${name} → ${shown} is selected on the U.` : `${name}: not drawn on the U.`;
    currentLine.hidden = false;
    view?.showHistogram(name);
  }

  list.addEventListener('click', (e) => {
    const pickEl = e.target.closest('[data-pick]');
    if (pickEl) {
      pick(pickEl.dataset.pick);
      return;
    }
    const block = e.target.closest('[data-select-block]');
    if (block) selectOnU(block.dataset.selectBlock);
  });
  list.addEventListener('change', (e) => {
    const name = e.target.dataset?.tick;
    if (!name) return;
    if (e.target.checked) ticked.add(name);
    else ticked.delete(name);
    showTicked();
  });
  toU.addEventListener('click', () => document.getElementById('diagram')?.scrollIntoView({ block: 'center' }));
  scopeClear.addEventListener('click', () => {
    scope = null;
    renderList();
  });
  let searchTimer = null;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(renderList, 120);
  });
  filter.addEventListener('change', renderList);

  store.on('selection', (path) => {
    if (selfSelect) return;
    scope = path || null;
    renderList();
  });
  store.on('trace', () => {
    showWeightsBanner();
    loadCatalog();
  });

  new IntersectionObserver((entries) => {
    visible = entries.some((e) => e.isIntersecting);
    if (visible) loadCatalog();
  }).observe(root);

  // ---- capture and export -----------------------------------------------------------------------------------

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

  async function runCapture() {
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
    setBusy(true, 'Capturing: one forward of the UNet on the server…');
    body.capture = 'running';
    try {
      const result = await api.captureActivations(req);
      if (catalog?.key !== key) {
        // The model changed meanwhile: this capture is of another model.
        status.textContent = '';
        body.capture = 'stale';
        return;
      }
      const drawn = renderCapture(results, result, { catalog: catalog.byName, onPick: pick, image: req.image ?? null });
      view = { key, showHistogram: drawn.showHistogram };
      const first = current && result.activations.some((a) => a.name === current) ? current : result.activations[0]?.name;
      await Promise.all([drawn.drawn, first ? drawn.showHistogram(first) : null]);
      status.textContent = `Captured ${result.activations.length} points in ${(result.timings.total_ms / 1000).toFixed(1)} s.`;
      body.capture = 'done';
    } catch (err) {
      status.textContent = '';
      showError(err);
      body.capture = 'error';
    } finally {
      busy = false;
      captureButton.disabled = false;
      exportButton.disabled = false;
    }
  }

  async function runExport() {
    if (busy || !catalog) return;
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
    setBusy(true, 'Exporting: one forward per image on the server…');
    body.exported = 'running';
    try {
      const blob = await api.exportActivations(exportBody);
      const model = (catalog.data.model.preset ?? catalog.data.model.weights ?? 'model').replace(/\.safetensors$/, '');
      const name = `activations-${model}-t${req.timestep}.safetensors`;
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      status.textContent = `Saved ${name} (${blob.size.toLocaleString('en-US')} bytes).`;
      body.exported = 'done';
    } catch (err) {
      status.textContent = '';
      showError(err);
      body.exported = 'error';
    } finally {
      busy = false;
      captureButton.disabled = false;
      exportButton.disabled = false;
    }
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
    /** For tests and links: pick a point by name (once the catalog is here). */
    pick,
    get catalog() {
      return catalog?.data ?? null;
    },
  };
}
