// features.js — wires the views beyond the single diagram: "Compare with", the scaling chart, "Colour by",
// "Search", the exports and the view in the URL. Like main.js it owns no drawing and no data rules: it listens to
// the store, changes the store, and hands data to compare.js, charts.js, search.js, export.js and urlstate.js.
// main.js creates it after its own listeners, so on every event the main diagram is already drawn.

import * as api from './api.js';
import { drawScaling, memoryNote, scalingNote, scalingSizes } from './charts.js';
import { createCompare } from './compare.js';
import { decorateCompare } from './variant_compare.js';
import { OVERLAYS } from './config.js';
import { exportAs } from './export.js';
import { bytes, compact, ms } from './format.js';
import { boxRect, expandablePaths, overlayScale, pathToOpen } from './layout.js';
import { createSearch } from './search.js';
import { readUrl, writeUrl } from './urlstate.js';
import { announce } from './status.js';
import { rampLegend, showLegend as showRampLegend } from './ramp_legend.js';

const $ = (id) => document.getElementById(id);

/**
 * store: the page's store; diagram: the main diagram; getIndex(): the current trace index (or null);
 * traceCache: main's "preset@size" → trace map (shared, so nothing is traced twice); renderDiagram(): redraw;
 * showError(message).
 */
export function createFeatures({ store, diagram, getIndex, traceCache, renderDiagram, showError }) {
  const { state } = store;
  let loading = true; // between a model being chosen and its trace arriving: the URL waits
  let pendingAll = false; // a link said open=*: open everything once the trace is here
  let pendingReveal = false; // a link selected a module: scroll to it once drawn

  const isPreset = (name) => state.presets.some((p) => p.name === name);

  async function cachedTrace(preset, imageSize) {
    const key = `${preset}@${imageSize ?? ''}`;
    let trace = traceCache.get(key);
    if (!trace) {
      trace = await api.getTrace({ preset, imageSize });
      traceCache.set(key, trace);
      if (trace.input?.image_size) traceCache.set(`${preset}@${trace.input.image_size[0]}`, trace);
    }
    return trace;
  }

  // ---- the URL ----------------------------------------------------------------------------------------------

  let urlTimer = null;
  function currentView() {
    const ix = getIndex();
    let open = [...state.expanded];
    // "Expand all" on a big model would make a very long link: say "*" when every block is open.
    if (ix && open.length > 40 && open.length === expandablePaths(ix).length) open = '*';
    return {
      preset: state.preset,
      size: state.trace?.input?.image_size?.[0] ?? state.imageSize,
      open,
      selection: state.selection,
      overlay: state.overlay,
      compare: state.compare,
      names: state.names,
      blockWeights: state.blockWeights,
    };
  }
  function writeSoon() {
    // Coalesced: a burst of clicks writes once (browsers throttle history updates).
    if (urlTimer || loading) return;
    urlTimer = setTimeout(() => {
      urlTimer = null;
      if (loading) return;
      const hash = writeUrl(currentView());
      if (hash !== location.hash) history.replaceState(null, '', hash);
      announce('url', 'true');
    }, 120);
  }

  /** Show the view of a link: preset, size, opened blocks, selection, overlay and compare pair (view may be null
   * for a plain start). */
  function applyView(view, preset, size) {
    pendingAll = view?.open === '*';
    pendingReveal = Boolean(view?.selection);
    const v = view ? { expanded: Array.isArray(view.open) ? view.open : [], selection: view.selection } : null;
    if (view?.overlay) store.setOverlay(view.overlay);
    if (view) {
      store.setNames(view.names ?? 'original');
      store.setBlockWeights(view.blockWeights);
    }
    if (view) store.setCompare(view.compare && isPreset(view.compare.preset) ? view.compare : null);
    store.setModel(preset, size, v);
  }

  window.addEventListener('hashchange', () => {
    const view = readUrl(location.hash);
    if (!isPreset(view.preset)) return;
    if (!view.overlay) store.setOverlay('none');
    applyView(view, view.preset, view.size);
  });

  // ---- Colour by ----------------------------------------------------------------------------------------------

  const overlaySelect = $('overlay');
  const legend = $('overlay-legend');
  overlaySelect.replaceChildren(
    ...OVERLAYS.map((o) => {
      const opt = document.createElement('option');
      opt.value = o.key;
      opt.textContent = o.key === 'time' ? `${o.label} (after Profile)` : o.label;
      return opt;
    }),
  );
  overlaySelect.addEventListener('change', () => store.setOverlay(overlaySelect.value));

  function showLegend() {
    const key = state.overlay;
    const ix = getIndex();
    overlaySelect.value = key;
    if (key === 'none' || !ix || OVERLAYS.find((o) => o.key === key)?.external) {
      showRampLegend(legend, null);
      return;
    }
    const spec = OVERLAYS.find((o) => o.key === key);
    const scale = overlayScale(ix, key);
    const fmt = spec.unit === 'bytes' ? bytes : spec.unit === 'ms' ? ms : (v) => compact(v);
    const tick = (t) => (scale.max ? fmt(scale.valueAt(t)) : '0');
    showRampLegend(legend, rampLegend({
      title: scale.max
        ? `${spec.label}: darkest = the largest top-level block (square-root scale)`
        : `${spec.label}: none in this model`,
      lo: tick(0),
      mid: [tick(0.5)],
      hi: tick(1),
    }));
    legend.dataset.overlay = key;
  }

  store.on('overlay', () => {
    renderDiagram();
    showLegend();
    writeSoon();
  });

  // ---- Search -------------------------------------------------------------------------------------------------

  let searchedPreset = null;
  // The blocks a query opened to reach its hits: the next query closes them again (the reader's own stay open).
  let openedBySearch = new Set();
  const search = createSearch(
    { input: $('search'), prev: $('search-prev'), next: $('search-next'), count: $('search-count') },
    {
      getIndex,
      onHits(paths) {
        if (searchedPreset !== state.preset) openedBySearch = new Set();
        searchedPreset = state.preset;
        diagram.setHighlights(paths);
        const ix = getIndex();
        if (!ix) return;
        const needed = new Set();
        for (const p of paths) for (const q of pathToOpen(ix, p)) needed.add(q);
        const open = new Set(state.expanded);
        let changed = false;
        for (const q of openedBySearch) {
          if (!needed.has(q) && open.delete(q)) changed = true;
        }
        const opened = new Set();
        for (const q of needed) {
          if (openedBySearch.has(q) || !open.has(q)) opened.add(q);
          if (!open.has(q)) {
            open.add(q);
            changed = true;
          }
        }
        openedBySearch = opened;
        if (changed) store.setExpanded([...open]);
      },
      onCurrent(path) {
        store.select(path);
        if (diagram.scene) diagram.reveal(boxRect(diagram.scene, path));
      },
    },
  );

  // ---- Exports ------------------------------------------------------------------------------------------------

  const exportStatus = $('export-status');
  for (const button of document.querySelectorAll('[data-export]')) {
    button.addEventListener('click', async () => {
      if (!state.trace || !diagram.scene) return;
      const kind = button.dataset.export;
      button.disabled = true;
      exportStatus.textContent = kind === 'png' || kind === 'svg' ? 'Drawing…' : '';
      try {
        const trace = state.trace;
        const custom = state.models.get(state.preset);
        const getSummary = () => api.getSummary({
          ...(custom ? { config: trace.config } : { preset: state.preset }),
          imageSize: trace.input?.image_size?.[0] ?? null,
        });
        await exportAs(kind, { diagram, trace, model: state.preset, getSummary });
        exportStatus.textContent = '';
      } catch (err) {
        exportStatus.textContent = `Export failed: ${err.message}`;
      } finally {
        button.disabled = false;
      }
    });
  }

  // ---- Compare ------------------------------------------------------------------------------------------------

  const compareSelect = $('compare-with');
  const sameSize = $('compare-same-size');
  const compare = createCompare($('compare'), {
    getTrace: cachedTrace,
    getComparison: (q) => api.getCompare(q),
    decorate: decorateCompare, // removed blocks and what a variant saves (variant_compare.js)
    onState: (s) => {
      announce('compare', s);
    },
  });
  let comparedKey = null;

  function fillCompareSelect() {
    const none = document.createElement('option');
    none.value = '';
    none.textContent = 'nothing (off)';
    compareSelect.replaceChildren(
      none,
      ...state.presets.map((p) => {
        const o = document.createElement('option');
        o.value = p.name;
        o.textContent = `${p.name} — ${p.title}`;
        return o;
      }),
    );
    compareSelect.value = state.compare?.preset ?? '';
  }
  store.on('presets', fillCompareSelect);
  compareSelect.addEventListener('change', () => {
    store.setCompare(compareSelect.value ? { preset: compareSelect.value, sameSize: sameSize.checked } : null);
  });
  sameSize.addEventListener('change', () => {
    if (state.compare) store.setCompare({ ...state.compare, sameSize: sameSize.checked });
  });
  $('compare-close').addEventListener('click', () => store.setCompare(null));

  function updateCompare() {
    const c = state.compare;
    compareSelect.value = c?.preset ?? '';
    sameSize.checked = Boolean(c?.sameSize);
    if (!c || !isPreset(state.preset)) {
      comparedKey = null;
      compare.hide();
      return;
    }
    if (!state.trace) return;
    const size = c.sameSize ? state.trace.input?.image_size?.[0] ?? null : null;
    sameSize.nextElementSibling.textContent = `both at ${size ?? state.trace.input?.image_size?.[0] ?? 'this'} px`;
    const key = `${state.preset}|${c.preset}|${size}`;
    if (key === comparedKey) return;
    comparedKey = key;
    compare.show({ a: state.preset, b: c.preset, imageSize: size });
  }
  store.on('compare', () => {
    updateCompare();
    writeSoon();
  });

  // ---- Scaling ------------------------------------------------------------------------------------------------

  const scalingEl = $('chart-scaling');
  const scalingStatus = $('scaling-status');
  const scalingData = new Map(); // "preset|sizes" → /api/scaling JSON
  const measured = new Map(); // preset → Map(image size → ms), from profiles in this page
  let scalingVisible = false;
  let scalingToken = 0;

  async function updateScaling() {
    if (!scalingVisible || !state.trace) return;
    const preset = state.preset;
    const mine = ++scalingToken;
    const entry = state.presets.find((p) => p.name === preset);
    if (!entry?.latent_factor || !state.trace.input?.image_size) {
      scalingStatus.textContent = 'Scaling is traced for the presets, in pixels.';
      announce('scaling', 'none');
      return;
    }
    const deepest = Math.max(1, ...state.trace.blocks.map((b) => b.factor));
    // 256 to 2048 px, and the size on screen too, so a profile of it shows on the curve.
    const here = state.trace.input.image_size[0];
    const sizes = [...new Set([...scalingSizes(entry.latent_factor * deepest), here])].sort((a, b) => a - b);
    const key = `${preset}|${sizes}`;
    try {
      let data = scalingData.get(key);
      if (!data) {
        announce('scaling', 'loading');
        scalingStatus.textContent = `Tracing ${preset} at ${sizes.length} sizes…`;
        data = await api.getScaling({ preset, sizes });
        scalingData.set(key, data);
      }
      if (mine !== scalingToken) return;
      await drawScaling(scalingEl, data, { times: measured.get(preset), title: `${preset}: cost per denoising step against image size` });
      if (mine !== scalingToken) return;
      $('scaling-note').textContent = `${scalingNote(data.points)} ${memoryNote(data.points)}`.trim();
      scalingStatus.textContent = '';
      announce('scaling', 'true');
    } catch (err) {
      if (mine !== scalingToken) return;
      scalingStatus.textContent = `Could not trace the sizes: ${err.message}`;
      announce('scaling', 'error');
    }
  }
  // Traced only when scrolled into view: eight traces of a big model take the server several seconds.
  new IntersectionObserver((entries) => {
    scalingVisible = entries.some((e) => e.isIntersecting);
    if (scalingVisible) updateScaling();
  }).observe($('scaling'));

  // ---- store → features ---------------------------------------------------------------------------------------

  store.on('model', () => {
    loading = true;
  });

  store.on('trace', (trace) => {
    loading = false;
    const ix = getIndex();
    if (pendingAll && ix) {
      pendingAll = false;
      store.setExpanded(expandablePaths(ix));
    }
    const timeOption = overlaySelect.querySelector('option[value="time"]');
    timeOption.disabled = trace.totals.time_ms == null;
    showLegend();
    if (trace.totals.time_ms != null && trace.input?.image_size) {
      if (!measured.has(state.preset)) measured.set(state.preset, new Map());
      measured.get(state.preset).set(trace.input.image_size[0], trace.totals.time_ms);
    }
    if (search.query && searchedPreset !== state.preset) search.run();
    if (pendingReveal && state.selection && diagram.scene) {
      pendingReveal = false;
      diagram.reveal(boxRect(diagram.scene, state.selection));
    }
    updateCompare();
    updateScaling();
    writeSoon();
  });
  store.on('expanded', writeSoon);
  store.on('selection', writeSoon);
  store.on('names', writeSoon);
  store.on('blockweights', writeSoon);

  return { applyView, currentView, search, compare };
}
