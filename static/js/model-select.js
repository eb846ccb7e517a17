// model-select.js — the header's Model select filled from the store: the presets, then one group per kind of
// model beside them (the ControlNet presets, then the models opened from files), the one on screen chosen.

import { CONTROL_GROUP } from './controlnet.js';

/** Fill `select` with the presets and models of the store's `state`. */
export function fillModelSelect(select, state) {
  const option = (value, text) => {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = text;
    return o;
  };
  const options = state.presets.map((p) => option(p.name, `${p.name} — ${p.title}`));
  for (const label of [CONTROL_GROUP, 'From files']) {
    const models = [...state.models.values()].filter((m) => (m.group ?? 'From files') === label);
    if (!models.length) continue;
    const group = document.createElement('optgroup');
    group.label = label;
    group.append(...models.map((m) => option(m.key, m.label)));
    options.push(group);
  }
  select.replaceChildren(...options);
  if (state.preset) select.value = state.preset;
}
