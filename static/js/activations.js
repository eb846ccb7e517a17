// activations.js — the "Activations" panel: the catalog of every named activation point of the model on screen
// (names, modules, shapes and who reads them all come from POST /api/activations/catalog; nothing is derived
// here), tied to the U both ways (a point picked here opens and selects its module on the diagram; a module
// selected on the diagram lists its points), and one real forward captured on the server (POST
// /api/activations/capture) drawn by activation_views.js, with its chosen points exported as .safetensors.
// This module holds the catalog, its list and the tie to the U; the capture form is activation_capture.js.
//
// It listens to the store and changes it only through select() and setExpanded(), like search does; main.js
// creates it with one call. The catalog is asked for once the panel scrolls into view (a model build in a worker).

import { STAGE_WORDS } from './config.js';
import * as api from './api.js';
import { createCapture } from './activation_capture.js';
import { h } from './dom.js';
import { shapeText } from './format.js';
import { boxRect, pathToOpen } from './layout.js';
import { announce } from './status.js';

const FILTERS = [
  ['all', 'all points'],
  ['@outputs', 'block outputs'],
  ['@cross-maps', 'cross-attention maps'],
  ['used', 'read by published work'],
];


/** Where a point sits in words: "down level 1, repeat 0, transformer block 0". */
function placeText(p) {
  const parts = [STAGE_WORDS[p.stage]?.inline ?? p.stage];
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
  const cache = new Map(); // model body JSON → catalog
  let catalog = null; // {key, data, byName}
  let loadToken = 0;
  let visible = false;
  let scope = null; // the module selected on the U whose points are listed, or null for all
  let current = null; // the point picked last
  let selfSelect = false; // our own store.select(): not a scope change
  const ticked = new Set(); // points chosen one by one in the list

  // ---- the panel's skeleton (built once) --------------------------------------------------------------------

  const status = h('span', { class: 'status', role: 'status', 'aria-live': 'polite', id: 'act-status' });
  // The capture form and its results (activation_capture.js).
  const capture = createCapture({ status, modelBody, getCatalog: () => catalog, ticked, getCurrent: () => current, pick });
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
      capture.form,
    ),
    capture.results,
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
    // The catalog states which weights a capture of this model runs (the server's file, the twin's, or none).
    const stated = catalog?.key === JSON.stringify(modelBody()) ? catalog.data.model.weights : undefined;
    const real = stated !== undefined ? stated != null : Boolean(state.trace && weights.matches(state.trace.config));
    weightsBanner.dataset.banner = real ? 'real' : 'random';
    weightsBanner.classList.toggle('act-banner-random', !real);
    weightsBanner.classList.toggle('act-banner-real', real);
    if (real && stated && catalog.data.model.preset === 'twin') {
      weightsBanner.replaceChildren(
        h('strong', {}, `Trained weights: ${stated}. `),
        'Captures run this model as trained: its own text encoder reads the caption, and the pictures are its pixels.',
      );
    } else if (real) {
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
        info ? '' : h('span', {}, 'Start it with ', h('code', {}, 'sdunet-explorer serve --weights FILE'), ' (a full checkpoint) for real activations. '),
        twinButton(),
      );
    }
  }

  /** The trained twin, one click away wherever the weights are random (absent when this server has no twin). */
  function twinButton() {
    if (!state.presets.some((p) => p.name === 'twin')) return '';
    const go = h('button', { type: 'button', id: 'act-to-twin', class: 'act-to-twin' }, 'Show the trained twin');
    go.addEventListener('click', () => store.setModel('twin', null));
    return h('span', {}, 'Or see activations that mean something: ', go, ' (a small SD-shaped model trained here, weights shipped).');
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
    announce('activations', 'loading');
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
      capture.clearUnless(key);
      scope = state.selection || null;
      const size = data.image_size.join('×');
      modelLine.textContent = `${data.model.weights ?? data.model.preset ?? 'custom model'} at ${size} px: ${data.count} points`;
      capture.setCatalog(data);
      showWeightsBanner();
      status.textContent = '';
      renderList();
      announce('activations', 'true');
    } catch (err) {
      if (mine !== loadToken) return;
      catalog = null;
      list.replaceChildren();
      modelLine.textContent = '';
      status.textContent = `Could not list the activation points: ${err.message}`;
      announce('activations', 'error');
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
    capture.showTicked();
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
    capture.showHistogram(name);
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
    capture.showTicked();
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


  return {
    /** For tests and links: pick a point by name (once the catalog is here). */
    pick,
    get catalog() {
      return catalog?.data ?? null;
    },
  };
}
