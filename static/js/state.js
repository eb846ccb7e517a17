// state.js — the one store of the page: which model and image size, its trace, which blocks are open, what is
// selected, which metric the cards show, and how a profile run is going. Views never change each other; they
// change the store, and the store tells everyone who listens (a ten-line emitter, no framework).

import { OVERLAYS } from './config.js';

/** A tiny event emitter: on(type, fn) returns a function that unsubscribes. */
export function createEmitter() {
  const handlers = new Map();
  return {
    on(type, fn) {
      if (!handlers.has(type)) handlers.set(type, new Set());
      handlers.get(type).add(fn);
      return () => handlers.get(type).delete(fn);
    },
    emit(type, payload) {
      for (const fn of handlers.get(type) ?? []) fn(payload);
    },
  };
}

export const METRICS = Object.freeze(['flops', 'params', 'time']);
// What "Colour by" can show: config.OVERLAYS's keys ('none' keeps the kind colours).
export const OVERLAY_KEYS = Object.freeze(OVERLAYS.map((o) => o.key));
// The naming schemes of /api/names (the "Names" switch); 'original' is our own paths.
export const NAME_SCHEMES = Object.freeze(['original', 'diffusers', 'lora_diffusers', 'lora_original', 'block_id', 'merge', 'kohya']);

/**
 * Events: 'presets', 'models' (a model from a file added), 'model' (preset or size chosen), 'trace' (a new trace
 * to draw), 'expanded' (with the paths that changed, or null for all), 'selection', 'metric', 'profile', 'error',
 * 'overlay' (the "Colour by" choice), 'compare' (the preset shown beside this one), 'names' (the naming scheme),
 * 'blockweights' (the block-weight spec), 'lora' (a LoRA file opened or closed).
 */
export function createStore() {
  const emitter = createEmitter();
  const state = {
    presets: [],
    // Models from files beside the presets: key ("checkpoint:<file>", "weights:<file>") → {key, label, config,
    // preset (the detected preset's name or null), file}. state.preset holds such a key when one is shown.
    models: new Map(),
    preset: null,
    imageSize: null, // pixels, square; null = the preset's reference size
    trace: null,
    expanded: new Set(),
    selection: null,
    metric: 'flops',
    overlay: 'none', // the "Colour by" fill of the blocks
    compare: null, // {preset, sameSize} shown beside this model, or null
    profile: { state: 'idle', phase: '', done: 0, total: 0, error: null },
    error: null,
    // Community names (issue 14): the "Names" scheme the cards speak, the block-weight spec typed (or null), and
    // the LoRA file opened (its name and the server's detection, or null).
    names: 'original',
    blockWeights: null,
    lora: null,
  };

  return {
    state,
    on: emitter.on,

    setPresets(presets) {
      state.presets = presets;
      emitter.emit('presets', presets);
    },

    /** Add (or replace) a model from a file; 'models' tells the selector. */
    addModel(entry) {
      state.models.set(entry.key, entry);
      emitter.emit('models', [...state.models.values()]);
    },

    /** Choose a model and image size; a different preset closes everything (its paths are different), unless
     * `view` ({expanded, selection}) says what to show. */
    setModel(preset, imageSize, view = null) {
      if (preset !== state.preset) {
        state.expanded = new Set();
        state.selection = null;
      }
      if (view) {
        // A link being restored: what to open and select once the trace is here (setTrace drops unknown paths).
        state.expanded = new Set(view.expanded ?? []);
        state.selection = view.selection ?? null;
      }
      state.preset = preset;
      state.imageSize = imageSize;
      emitter.emit('model', { preset, imageSize });
    },

    /** A new trace: keep what is open and selected when the paths still exist (same model, new size or times). */
    setTrace(trace) {
      const paths = new Set(trace.nodes.map((n) => n.path));
      state.expanded = new Set([...state.expanded].filter((p) => paths.has(p)));
      if (state.selection !== null && !paths.has(state.selection)) state.selection = null;
      if (state.metric === 'time' && trace.totals.time_ms == null) state.metric = 'flops';
      if (state.overlay === 'time' && trace.totals.time_ms == null) state.overlay = 'none';
      state.trace = trace;
      state.error = null;
      emitter.emit('trace', trace);
    },

    toggle(path) {
      if (state.expanded.has(path)) state.expanded.delete(path);
      else state.expanded.add(path);
      emitter.emit('expanded', [path]);
    },

    setExpanded(paths) {
      state.expanded = new Set(paths);
      emitter.emit('expanded', null);
    },

    select(path) {
      if (path === state.selection) return;
      state.selection = path;
      emitter.emit('selection', path);
    },

    setMetric(metric) {
      if (!METRICS.includes(metric) || metric === state.metric) return;
      state.metric = metric;
      emitter.emit('metric', metric);
    },

    setOverlay(key) {
      if (!OVERLAY_KEYS.includes(key) || key === state.overlay) return;
      state.overlay = key;
      emitter.emit('overlay', key);
    },

    /** Show another preset beside this one (null: compare mode off). */
    setCompare(compare) {
      const next = compare?.preset ? { preset: compare.preset, sameSize: Boolean(compare.sameSize) } : null;
      if (JSON.stringify(next) === JSON.stringify(state.compare)) return;
      state.compare = next;
      emitter.emit('compare', next);
    },

    setProfile(patch) {
      state.profile = { ...state.profile, ...patch };
      emitter.emit('profile', state.profile);
    },

    // ---- community names, block weights, LoRA (issue 14) ----

    setNames(scheme) {
      if (!NAME_SCHEMES.includes(scheme) || scheme === state.names) return;
      state.names = scheme;
      emitter.emit('names', scheme);
    },

    /** The block-weight spec as typed (null or '' clears it). */
    setBlockWeights(spec) {
      const next = spec ? String(spec) : null;
      if (next === state.blockWeights) return;
      state.blockWeights = next;
      emitter.emit('blockweights', next);
    },

    /** The LoRA on the U: {file, detection} or null. */
    setLora(lora) {
      state.lora = lora;
      emitter.emit('lora', lora);
    },

    setError(message) {
      state.error = message;
      emitter.emit('error', message);
    },
  };
}
