// community.js — wires issue 14's three views into the page: the "Names" switch (names.js), block weights on the U
// (blockweights.js) and an open LoRA (lora.js). Like features.js it draws nothing itself and keeps no data rules:
// it listens to the store, asks the server, and hands three hooks to the views:
//   cardLabel(ix, node, defaults) — the card's lines in the chosen naming scheme (layout.js calls it via ix);
//   painter() — the card painter of the current "Colour by" choice when it is one of ours (diagram.js);
//   detailsSections(ix, path) — the names and the LoRA lines of the selected block (details.js).

import { createBlockWeights, weightsPainter } from './blockweights.js';
import { OVERLAYS } from './config.js';
import { h } from './dom.js';
import { createLora, loraDetails, loraLegend, loraPainter } from './lora.js';
import { createNames, namesView } from './names.js';
import { announce } from './status.js';

const $ = (id) => document.getElementById(id);
const LORA_OVERLAYS = new Set(['lora-rank', 'lora-params']);

/**
 * store: the page's store; api: api.js; shownModel(): {custom, preset, title} of the model on screen;
 * relayout(): lay the U out again (card widths follow their labels); renderDiagram(); refreshDetails().
 */
export function createCommunity({ store, api, shownModel, relayout, renderDiagram, refreshDetails }) {
  const { state } = store;
  let modelKey = null; // the model the names and weights are for
  let drawnKey = null; // the model whose trace is on screen: until its trace is in, the old U keeps its own look
  let sizeKey = null; // …and the size the LoRA's FLOPs are for
  let weights = null; // the block-weight answer shown
  let lora = null; // {file, detection, matches}
  let paint = null; // the painter of the current overlay (kept by identity: the diagram redraws on a new one)
  let typed = false; // the spec was typed here (not restored from a link): show it at once

  /** The model on screen as a /api/trace-style body. */
  function modelBody() {
    const { custom } = shownModel();
    // A control model's entry names the UNet it steers by preset (config null): that UNet is the U on screen.
    if (custom?.config) return { config: custom.config };
    return { preset: custom?.preset ?? state.preset };
  }

  // ---- Names ------------------------------------------------------------------------------------------------

  const names = createNames($('names-scheme'), {
    load: (model) => api.getNames(model),
    onChange: (scheme) => store.setNames(scheme),
    onLoaded(table) {
      announce('names', table ? 'true' : 'none');
      weightsField.setPresets(table?.table.presets ?? []);
      if (state.names !== 'original') relayout();
      refreshDetails();
    },
  });

  store.on('names', (scheme) => {
    names.setScheme(scheme);
    relayout();
    refreshDetails();
  });

  // ---- Block weights ----------------------------------------------------------------------------------------

  const weightsField = createBlockWeights(
    { input: $('block-weights'), error: $('block-weights-error'), legend: $('block-weights-legend'), presets: $('block-weight-presets') },
    {
      load: (spec) => api.getBlockWeights(modelBody(), spec),
      onSpec(spec) {
        typed = true;
        store.setBlockWeights(spec);
      },
      onResult(res) {
        weights = res;
        setOptions();
        if (res && typed) store.setOverlay('weights');
        else if (!res && state.overlay === 'weights' && !state.blockWeights) store.setOverlay('none');
        typed = false;
        repaint();
      },
    },
  );
  // Before the first model is chosen (a link being restored) there is nothing to read it against: 'model' does it.
  store.on('blockweights', (spec) => state.preset && weightsField.apply(spec));

  // ---- LoRA -------------------------------------------------------------------------------------------------

  const loraLegendEl = $('lora-legend');
  const loraPanel = createLora(
    { button: $('open-lora'), input: $('lora-file'), panel: $('lora'), dropZone: document.querySelector('.diagram-panel') },
    {
      detect: (b, q) => api.detectLora(b, q),
      context() {
        const { custom, preset, title } = shownModel();
        const size = state.trace?.input?.image_size ?? null;
        return { preset: custom ? custom.preset : state.preset, family: preset?.family ?? null, imageSize: size, title };
      },
      onDetected(next) {
        // Newly drawable (opened on its model, or its model switched to): show it by rank.
        const drawable = Boolean(next?.matches) && !(lora?.matches && lora.id === next.id);
        lora = next;
        setOptions();
        if (drawable && !LORA_OVERLAYS.has(state.overlay)) store.setOverlay('lora-rank');
        if (!next && LORA_OVERLAYS.has(state.overlay)) store.setOverlay('none');
        store.setLora(next);
        repaint();
        refreshDetails();
        announce('lora', next ? (next.matches ? 'on' : 'other-family') : 'none');
      },
      onSwitch: (preset) => store.setModel(preset, null),
      onSelect: (path) => store.select(path),
    },
  );

  // ---- painting ---------------------------------------------------------------------------------------------

  /** Enable "Colour by" choices that have something to show. */
  function setOptions() {
    const select = $('overlay');
    const set = (key, on, how) => {
      const o = select.querySelector(`option[value="${key}"]`);
      if (!o) return;
      o.disabled = !on;
      o.title = on ? '' : how;
    };
    set('weights', Boolean(weights), 'type a spec in "Block weights"');
    set('lora-rank', Boolean(lora?.matches), "open a LoRA of this model's family");
    set('lora-params', Boolean(lora?.matches), "open a LoRA of this model's family");
  }

  function repaint() {
    const key = state.overlay;
    let next = null;
    if (key === 'weights' && weights) next = weightsPainter(weights);
    else if (LORA_OVERLAYS.has(key) && lora?.matches) next = loraPainter(lora.detection, key);
    paint = next;
    const bwLegend = $('block-weights-legend');
    bwLegend.hidden = !(key === 'weights' && weights);
    const showLora = LORA_OVERLAYS.has(key) && lora?.matches;
    loraLegendEl.hidden = !showLora;
    loraLegendEl.replaceChildren(...(showLora ? loraLegend(lora.detection, key) : []));
    renderDiagram();
    // The probes' and the sweep's overlays are announced by the views that paint them.
    if (!OVERLAYS.find((o) => o.key === key)?.owner) announce('paint', next ? key : 'none');
  }

  store.on('overlay', repaint);

  // A new model: its own names and weights (asked before its trace is drawn, so nothing of the old one shows on
  // it); the LoRA is matched again once the trace says the size its FLOPs are counted at.
  function syncModel() {
    const mk = JSON.stringify(modelBody());
    if (mk === modelKey) return;
    modelKey = mk;
    names.forModel(modelBody(), state.names);
    weights = null;
    paint = null;
    if (state.blockWeights) weightsField.apply(state.blockWeights);
  }
  store.on('model', syncModel);

  store.on('trace', () => {
    // A model whose trace main.js already holds is drawn before the 'model' listeners below main's run: take the
    // new model first, or the U would keep waiting for names that are already in.
    syncModel();
    if (drawnKey !== modelKey) {
      // main.js has just drawn the new model plain (the hooks below answer null until now): draw it in our terms.
      drawnKey = modelKey;
      if (paint || state.names !== 'original') relayout();
    }
    const sk = `${modelKey}@${state.trace?.input?.image_size ?? ''}`;
    if (sk === sizeKey) return;
    sizeKey = sk;
    if (loraPanel.current) {
      loraPanel.refresh();
    }
  });

  setOptions();

  return {
    cardLabel(ix, node, defaults) {
      if (drawnKey !== modelKey) return null; // another model's names on the trace still shown
      return names.current?.labelFor(ix, node, state.names, defaults) ?? null;
    },
    painter: () => (drawnKey === modelKey ? paint : null),
    detailsSections(ix, path) {
      const out = [];
      if (path) {
        const table = drawnKey === modelKey ? names.current : null;
        out.push(table ? namesView(table, path, state.names) : h('p', { class: 'muted', dataset: { field: 'names' } }, 'Names: loading…'));
      }
      if (lora?.matches) out.push(loraDetails(lora.detection, path));
      return out.filter(Boolean);
    },
  };
}
