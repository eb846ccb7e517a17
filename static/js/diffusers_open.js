// diffusers_open.js — "Open diffusers config…": a UNet2DConditionModel config.json pasted into a textarea (or read
// from a chosen file) is posted as POST /api/trace {diffusers_config}; what the server refuses comes back as its
// 4xx reason and field, shown next to the field. A config it takes opens as a model of the selector (our UNetConfig,
// as the trace states it). The panel's dataset.state is idle / tracing / done / error.

import { request } from './api.js';
import { h } from './dom.js';

/** POST /api/trace {diffusers_config} → the trace. */
export function traceDiffusersConfig(config) {
  return request('POST', '/api/trace', { diffusers_config: config });
}

/**
 * button: toggles the panel; panel: the (empty) section to fill. onOpened(entry) receives a model entry
 * {key, label, config, preset: null, file} for the store.
 */
export function createDiffusersOpen({ button, panel }, { onOpened }) {
  const text = h('textarea', { id: 'diffusers-config', spellcheck: 'false', 'aria-describedby': 'diffusers-error',
    placeholder: '{"_class_name": "UNet2DConditionModel", "block_out_channels": [320, 640, 1280, 1280], …}' });
  const file = h('input', { type: 'file', accept: '.json,application/json', id: 'diffusers-file', 'aria-label': 'diffusers config.json file' });
  const name = h('input', { type: 'text', id: 'diffusers-name', value: 'config.json', size: '18', 'aria-label': 'Name in the list' });
  const go = h('button', { type: 'button', class: 'primary', id: 'diffusers-draw' }, 'Draw it');
  const error = h('p', { id: 'diffusers-error', class: 'diffusers-error', role: 'alert', hidden: true });
  panel.replaceChildren(
    h('label', { for: 'diffusers-config' }, 'A diffusers UNet config.json (paste it, or pick the file):'),
    text,
    h('div', { class: 'row' }, file, h('label', { for: 'diffusers-name' }, 'Name'), name, go),
    error,
  );
  panel.dataset.state = 'idle';
  let token = 0;

  function fail(message, field = null) {
    error.replaceChildren(h('strong', {}, 'Not drawn: '), message, field ? h('span', {}, ' (field ', h('code', { class: 'diffusers-field' }, field), ')') : '');
    error.hidden = false;
    text.setAttribute('aria-invalid', 'true');
    panel.dataset.state = 'error';
  }

  async function draw() {
    const mine = ++token;
    error.hidden = true;
    text.removeAttribute('aria-invalid');
    let config;
    try {
      config = JSON.parse(text.value);
    } catch (err) {
      fail(`the text is not JSON: ${err.message}`);
      return;
    }
    panel.dataset.state = 'tracing';
    go.disabled = true;
    try {
      const trace = await traceDiffusersConfig(config);
      if (mine !== token) return;
      const label = name.value.trim() || 'config.json';
      panel.dataset.state = 'done';
      onOpened({ key: `diffusers:${label}`, label: `From diffusers config: ${label}`, config: trace.config, preset: null, file: label });
    } catch (err) {
      if (mine !== token) return;
      // The server's own words: its reason, and the field of the config it is about.
      fail(err.reason ?? err.message, err.field);
    } finally {
      if (mine === token) go.disabled = false;
    }
  }

  go.addEventListener('click', draw);
  file.addEventListener('change', async () => {
    const f = file.files?.[0];
    if (!f) return;
    text.value = await f.text();
    name.value = f.name;
    file.value = '';
    draw();
  });
  button.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    button.setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) text.focus();
  });
  return { draw, text };
}
