// main.js — wires the page: controls → store → views. It owns no drawing and no data rules of its own: the store
// holds the state, layout.js places things, diagram.js / details.js / charts.js draw, api.js talks to the server.
// After every render it announces "ready" (status.js) so tests and benches can wait.
// Self-contained parts of the page live beside it: zoom.js (the zoom), profiling.js ("Profile"), panels.js (the
// folding panels), summary.js (the totals and the card hint), session-models.js (models from files kept per tab).

import * as api from './api.js';
import { createActivations } from './activations.js';
import { createGenerate } from './generate.js';
import { createKnobs } from './knobs.js';
import { createEffectOverlay } from './effect_overlay.js';
import { createProbes } from './probes.js';
import { drawCharts } from './charts.js';
import { createCheckpoint } from './checkpoint.js';
import { createCommunity } from './community.js';
import { createDetails } from './details.js';
import { createDiagram } from './diagram.js';
import { boxRect, createMemo, expandablePaths, flowOf, indexTrace, layoutScene } from './layout.js';
import { createMinimap } from './minimap.js';
import { easeZoom } from './refit-motion.js';
import { createStore } from './state.js';
import { createFeatures } from './features.js';
import { createFocus } from './focus.js';
import { explainOnHover } from './glossary.js';
import { createKeepClear } from './keepclear.js';
import { createPipelineStrip } from './pipeline-strip.js';
import { createTeach } from './teach.js';
import { WALK_LESSON, createLessonPlayer } from './lesson_player.js';
import { MAX_IMAGE_SIZE } from './limits.js';
import { readUrl } from './urlstate.js';
import { createWeights, weightsModelKey } from './weights.js';
import { foldable } from './panels.js';
import { createProfiling } from './profiling.js';
import { rememberModel, restoreModel } from './session-models.js';
import { metricHint, summaryList } from './summary.js';
import { createZoom } from './zoom.js';
// Control models (ControlNet presets and files, T2I-Adapters, control-LoRAs) beside the U: controlnet*.js.
import { fileEntry, getControlPresets, presetEntry } from './controlnet.js';
import { createControlView } from './controlnet_view.js';
import { createDiffusersOpen } from './diffusers_open.js';
import { announce } from './status.js';
import { fillModelSelect } from './model-select.js';

const $ = (id) => document.getElementById(id);
const store = createStore();
const { state } = store;
const weights = createWeights(api);

/** The model on screen: a preset, or a model from a file (custom) with the preset it was detected as, if any. */
function shownModel() {
  const custom = state.models.get(state.preset) ?? null;
  const preset = state.presets.find((p) => p.name === (custom ? custom.preset : state.preset));
  return { custom, preset, title: custom?.label ?? preset?.title ?? state.preset };
}

let ix = null; // lookups for the current trace
let memo = null; // layout memo for the current trace
const traceCache = new Map(); // "preset@size" → trace, so switching back is instant
let loadToken = 0;
let community = null; // names, block weights and an open LoRA (community.js), created last
let probes = null; // the Probes view (probes.js): its "Colour by: discriminative power" painter
let effects = null; // "Colour by: effect of removing" (effect_overlay.js), from the Knobs panel's sweep
let fittedPreset = null; // the model the view was last fitted to: a new one starts fitted
let firstDrawn = false;

function setReady(ready) {
  announce('ready', ready ? 'true' : 'false');
}

// ---- views --------------------------------------------------------------------------------------------------

const diagramHost = $('diagram');
const diagram = createDiagram(diagramHost, {
  onActivate(path) {
    store.select(path);
    if (ix && flowOf(ix, path).boxPaths.length) {
      toggled = path;
      store.toggle(path);
    }
  },
  onSelect: (path) => store.select(path),
});
const minimap = createMinimap(diagramHost.parentNode, diagram); // where the view is, once the U outgrows it
explainOnHover(diagram.element); // the shorthand on cards and operations in words (glossary.js)

const controlView = createControlView($('controlnet'), {
  onError: (message) => showError(message),
  onRendered: () => controlView.decorate(diagram.element),
});

const details = createDetails($('details-body'), {
  onToggle: (path) => store.toggle(path),
  onSelect: (path) => store.select(path),
  loadSource: (kind) => api.getSource(kind),
  loadSourceKinds: () => api.getSourceKinds(),
  loadDiffusersNames: (trace) => api.getDiffusersNames({ config: trace.config }),
  weights,
  extraSections: (i, path) => community?.detailsSections(i, path) ?? [],
});

// The zoom follows the window until the user zooms by hand (zoom.js); the minimap follows the zoom.
const zoom = createZoom(diagram, {
  state,
  host: diagramHost,
  level: $('zoom-level'),
  buttons: { zoomIn: $('zoom-in'), zoomOut: $('zoom-out'), fit: $('zoom-fit') },
  onShow: () => minimap.update(),
});

function renderDiagram(anchor = null) {
  if (!ix) return;
  setReady(false);
  const t0 = performance.now();
  const before = anchor ? diagram.screenRect(anchor) : null;
  const zoomBefore = diagram.zoom;
  const scene = layoutScene(ix, state.expanded, memo);
  // Block weights or a LoRA, the probes' accuracy or the sweep's effect, when "Colour by" shows one.
  const painter = community?.painter() ?? probes?.painter() ?? effects?.painter() ?? null;
  diagram.render(scene, ix, { metric: state.metric, selection: state.selection, overlay: state.overlay, painter });
  minimap.draw(scene);
  if (zoom.auto) zoom.refit();
  // The block the user opened or closed stays where it was on screen.
  if (before) {
    diagram.keepAt(anchor, before.left, before.top);
    // A refit eases in about where the clicked block ends up (keepAt cannot scroll past the U's edge).
    const ease = easeZoom(diagram.element, zoomBefore / diagram.zoom, diagram.screenRect(anchor));
    // The minimap's frame was measured on the ease's first (scaled) frame: measure again once it has run.
    ease?.finished.then(() => minimap.update(), () => {});
  }
  announce('renderMs', (performance.now() - t0).toFixed(1));
  controlView.decorate(diagram.element); // the control model's injections marked on the U
  zoom.show();
  $('metric-hint').textContent = metricHint(state);
  setReady(true);
}

// Folding tools and the details panel: the diagram takes the room they leave, and refits.
const setTools = foldable($('tools'), $('tools-toggle'));
// Open at first on a tall window; on a laptop or projector the U gets the room.
setTools(window.innerHeight >= 900);
const setDetails = foldable($('details'), $('details-toggle'));
$('details-close').addEventListener('click', () => setDetails(false));

function showDetails() {
  const path = state.selection ?? '';
  const expandable = Boolean(ix && path !== '' && ix.nodes.has(path) && flowOf(ix, path).boxPaths.length);
  details.show(ix, path, { expanded: state.expanded.has(path), expandable, model: shownModel().title });
}

function showError(message) {
  const box = $('error');
  box.textContent = message ?? '';
  box.hidden = !message;
}

async function drawChartsSoon() {
  announce('charts', 'false');
  const current = ix;
  // After the diagram is on screen: the charts are secondary and Plotly's first draw takes a moment.
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  if (current !== ix) return;
  try {
    await drawCharts({ flopsEl: $('chart-flops'), paramsEl: $('chart-params') }, ix, { onSelect: (p) => store.select(p) });
    announce('charts', 'true');
  } catch (err) {
    showError(`Charts failed: ${err.message}`);
  }
}

// ---- store → views --------------------------------------------------------------------------------------------

const refillModels = () => fillModelSelect($('model'), state);
store.on('presets', refillModels);
store.on('models', refillModels);

store.on('model', ({ preset }) => {
  $('model').value = preset;
  loadTrace();
});

store.on('trace', (trace) => {
  ix = indexTrace(trace);
  ix.cardLabel = (i, node, lines) => community?.cardLabel(i, node, lines) ?? null; // the "Names" switch
  memo = createMemo();
  const keptZoom = diagram.zoom;
  if (fittedPreset !== state.preset) {
    // A new model starts fitted to the window (never enlarged); a new size or a profile keeps a hand-set zoom.
    zoom.auto = true;
    fittedPreset = state.preset;
  }
  renderDiagram();
  if (!zoom.auto) diagram.setZoom(keptZoom);
  zoom.show();
  // The legend names only the signals this model has.
  const uses = [...ix.uses.values()];
  document.querySelector('[data-legend="emb"]').hidden = !uses.some((u) => u.emb);
  document.querySelector('[data-legend="ctx"]').hidden = !uses.some((u) => u.ctx);
  announce('preset', state.preset ?? '');
  if (!firstDrawn) {
    firstDrawn = true;
    // Navigation → first diagram on screen (performance.now() counts from navigation start), for the page bench.
    requestAnimationFrame(() => {
      announce('firstDrawMs', performance.now().toFixed(1));
    });
  }
  $('diagram').setAttribute('aria-busy', 'false');
  const { preset } = shownModel();
  const sizeInput = $('image-size');
  if (trace.input?.image_size) {
    sizeInput.value = trace.input.image_size[0];
    // Every level must divide evenly: a multiple of the latent factor times the deepest block's downsample factor.
    const step = (preset?.latent_factor ?? trace.input.latent_factor) * Math.max(1, ...trace.blocks.map((b) => b.factor));
    sizeInput.step = step;
    sizeInput.min = step;
    sizeInput.disabled = false;
  } else {
    sizeInput.disabled = true;
  }
  const timed = trace.totals.time_ms != null;
  const timeRadio = document.querySelector('input[name="metric"][value="time"]');
  timeRadio.disabled = !timed;
  document.querySelector(`input[name="metric"][value="${state.metric}"]`).checked = true;
  $('summary').replaceChildren(summaryList(trace, shownModel().title));
  if (state.selection) setDetails(true); // a link that selected a module shows it
  showDetails();
  drawChartsSoon();
  controlView.show(shownModel().custom, trace); // a control model beside the U, or nothing
});

let toggled = null; // the block the user just opened or closed: the view keeps it in place
store.on('expanded', () => {
  renderDiagram(toggled);
  toggled = null;
  showDetails();
});

store.on('selection', (path) => {
  diagram.highlight(path);
  if (path != null && !document.body.classList.contains('presenting')) setDetails(true);
  showDetails();
});

store.on('metric', (metric) => {
  document.querySelector(`input[name="metric"][value="${metric}"]`).checked = true;
  renderDiagram();
});

// "Profile": times every block on the server and shows the measured trace (profiling.js).
createProfiling({ store, api, weights, traceCache }, { button: $('profile'), bar: $('profile-progress'), status: $('profile-status') });

// ---- loading --------------------------------------------------------------------------------------------------

async function loadTrace() {
  const { preset, imageSize } = state;
  const key = `${preset}@${imageSize ?? ''}`;
  const token = ++loadToken;
  setReady(false);
  $('diagram').setAttribute('aria-busy', 'true');
  showError(null);
  try {
    let trace = traceCache.get(key);
    if (!trace) {
      const custom = state.models.get(preset);
      // A model without a config of its own (a ControlNet preset) draws the UNet preset it steers.
      const body = custom ? (custom.config ? { config: custom.config } : { preset: custom.preset }) : { preset };
      trace = await api.getTrace({ ...body, imageSize });
      traceCache.set(key, trace);
      if (trace.input?.image_size) traceCache.set(`${preset}@${trace.input.image_size[0]}`, trace);
    }
    if (token !== loadToken) return;
    store.setTrace(trace);
  } catch (err) {
    if (token !== loadToken) return;
    showError(`Could not trace ${preset}: ${err.message}`);
    $('diagram').setAttribute('aria-busy', 'false');
    setReady(true);
  }
}

// ---- controls ---------------------------------------------------------------------------------------------------

$('model').addEventListener('change', (e) => store.setModel(e.target.value, null));

$('image-size').addEventListener('change', (e) => {
  const step = Number(e.target.step) || 8;
  let v = Math.round(Number(e.target.value) / step) * step;
  if (!Number.isFinite(v) || v < step) v = step;
  if (MAX_IMAGE_SIZE != null) v = Math.min(v, Math.floor(MAX_IMAGE_SIZE / step) * step);
  e.target.value = v;
  // The same size again (a blur after a snapped value, say) is no change: do not trace and redraw twice.
  const shown = state.trace?.input?.image_size?.[0] ?? state.imageSize;
  if (v === shown) return;
  store.setModel(state.preset, v);
});

for (const radio of document.querySelectorAll('input[name="metric"]')) {
  radio.addEventListener('change', (e) => store.setMetric(e.target.value));
}

$('expand-all').addEventListener('click', () => ix && store.setExpanded(expandablePaths(ix)));
$('collapse-all').addEventListener('click', () => store.setExpanded([]));

// "Open checkpoint": the detected architecture becomes a model in the selector and opens like a preset.
createCheckpoint(
  { button: $('open-checkpoint'), input: $('checkpoint-file'), panel: $('checkpoint') },
  {
    detect: (text) => api.detectCheckpoint(text),
    onDetected(det, file) {
      const key = `checkpoint:${file}`;
      for (const k of traceCache.keys()) if (k.startsWith(`${key}@`)) traceCache.delete(k); // a new file, same name
      // A control model (det.kind) opens as the UNet it steers with the control model beside it.
      const entry = det.kind ? fileEntry(det, file) : { key, label: `From checkpoint: ${file}`, config: det.config, preset: det.preset, file };
      store.addModel(entry);
      rememberModel(entry);
      store.setModel(key, null);
    },
  },
);
// "Open diffusers config": a pasted or picked config.json, traced by the server, opens like a checkpoint's model.
createDiffusersOpen({ button: $('open-diffusers'), panel: $('diffusers-open') }, {
  onOpened(entry) {
    for (const k of traceCache.keys()) if (k.startsWith(`${entry.key}@`)) traceCache.delete(k);
    store.addModel(entry);
    rememberModel(entry);
    store.setModel(entry.key, null);
  },
});

const teach = createTeach({ present: $('present'), walk: $('walk') }, {
  store,
  diagram,
  getIndex: () => ix,
  refit: () => requestAnimationFrame(() => (zoom.auto ? zoom.refit() : null)),
  toggleWalk: () => lessons.toggle(WALK_LESSON),
});
// Focus (F, or in Present on opening): one block fills the view, titles 14 px or more; Esc returns to the U.
createFocus({ button: $('focus') }, { store, diagram, zoom, isPresenting: () => document.body.classList.contains('presenting') });

// Where the U sits: the sampling pipeline in the free band of the U's top row (the trace's `pipeline`).
createPipelineStrip(document.querySelector('.diagram-stage'), { diagram, store });

/** The server's weights file, if it has one: the badge, and the model to show first (its preset or its config). */
async function loadWeights() {
  let info;
  try {
    info = await weights.load();
  } catch (err) {
    showError(`Could not read the weights file: ${err.message}`);
    return null;
  }
  if (!info) return null;
  const badge = $('weights-badge');
  badge.textContent = `Weights: ${info.file}`;
  badge.title = `${info.format} checkpoint, ${info.preset ?? 'custom'} architecture: `
    + 'weight statistics in the details; Profile runs with these weights';
  badge.hidden = false;
  const key = weightsModelKey(info);
  if (info.preset) return key;
  store.addModel({ key, label: `Weights: ${info.file}`, config: info.config, preset: null, file: info.file });
  return key;
}

async function init() {
  setReady(false);
  try {
    // Both lists at once (the template preloads them, so they are usually here before this module runs).
    const [presets, controls] = await Promise.all([api.getPresets(), getControlPresets()]);
    store.setPresets(presets);
    for (const p of controls) store.addModel(presetEntry(p));
  } catch (err) {
    showError(`Could not load the presets: ${err.message}`);
    setReady(true);
    return;
  }
  const fromWeights = await loadWeights();
  knobs.offerCheckpoint(weights.info); // the Knobs panel runs on the server's checkpoint too, when it has one
  // "#sdxl-base@1024" picks the model and size; otherwise the weights file's model, or SD 1.x at its reference size.
  // The rest of the view in the link (opened blocks, selection, overlay, compare): urlstate.js, features.js.
  const view = readUrl(location.hash);
  const [hashPreset, hashSize] = [view.preset, view.size];
  restoreModel(store, hashPreset); // a model from a file, kept for this tab (session-models.js)
  const names = [...state.presets.map((p) => p.name), ...state.models.keys()];
  const preset = names.includes(hashPreset) ? hashPreset : fromWeights ?? (names.includes('sd1') ? 'sd1' : names[0]);
  const size = Number(hashSize) > 0 ? Number(hashSize) : null;
  features.applyView(preset === hashPreset ? view : null, preset, size);
  // ?lesson=…: after the first view, so the lesson's step is what shows (an old link into the Walk plays its lesson).
  if (view.walk) lessons.toggle(WALK_LESSON);
  else lessons.openFromUrl();
}

// Compare, scaling, "Colour by", search, exports and the URL; after the listeners above, so it sees drawn views.
const features = createFeatures({ store, diagram, getIndex: () => ix, traceCache, renderDiagram, showError });

// The "Activations" panel (issue 16): the catalog of points tied to the U, and captures of one real forward.
const generateView = createGenerate($('generate'));
const knobs = createKnobs($('knobs'));
effects = createEffectOverlay({ store, knobs, legend: $('effect-legend'), select: $('overlay'), getIndex: () => ix, renderDiagram });
// Lessons (issue 27): played in Present mode through the same path a link takes (features.applyView).
const lessons = createLessonPlayer({ after: $('present') }, {
  store,
  applyView: features.applyView,
  currentView: features.currentView,
  currentGenerate: () => generateView.current(),
  currentKnobs: () => knobs.current(),
  showGenerate: (want) => generateView.show(want),
  showKnobs: (want) => knobs.show(want),
  setPresenting: (on) => document.body.classList.contains('presenting') !== on && teach.setPresenting(on),
  reveal: (path) => diagram.scene && diagram.reveal(boxRect(diagram.scene, path)),
  diagram,
  onPlaying: (ref) => teach.showWalking(ref === WALK_LESSON),
});
// The lesson panel and the minimap move off the block being talked about (the minimap hides when no corner is free).
createKeepClear(diagram, store, [
  { el: lessons.panel, places: ['bottom', 'top'], hide: false },
  { el: minimap.element, places: ['bottom-right', 'top-right', 'bottom-left', 'top-left'], hide: true },
]);
probes = createProbes($('probes'), { store, diagram, getIndex: () => ix, renderDiagram, legend: $('probe-legend'), weights });
createActivations($('activations'), { store, diagram, getIndex: () => ix, weights });

// Names, block weights and "Open LoRA" (issue 14); a new label scheme lays the U out again (card widths).
community = createCommunity({
  store,
  api,
  shownModel,
  relayout() {
    memo = createMemo();
    renderDiagram();
  },
  renderDiagram,
  refreshDetails: () => ix && showDetails(),
});

init();
