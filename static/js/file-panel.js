// file-panel.js — what the panels that open a user's file share (checkpoint.js, lora.js): the button that opens
// the file picker, the panel's head with its close button, and the error lines (the reason in words, and the
// field of the file it is about). Text from the file or the server goes in as text nodes only.

import { h } from './dom.js';

/** The button opens the picker; a file chosen goes to open(file). The picker is cleared, so that choosing the same
 * file again opens it again. */
export function wirePicker(button, input, open) {
  button.addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    input.value = ''; // choosing the same file again opens it again
    if (file) open(file);
  });
}

/** The panel's head: its title, the file's name and a × button (aria-label closeLabel) that calls onClose. */
export function panelHead(title, fileName, closeLabel, onClose) {
  const close = h('button', { type: 'button', class: 'ckpt-close', 'aria-label': closeLabel }, '×');
  close.addEventListener('click', onClose);
  return h('div', { class: 'ckpt-head' }, h('h2', {}, title), h('span', { class: 'ckpt-file' }, fileName), close);
}

/** Why a file was not opened: "<lead> <why>" as an alert, then the field it is about when the server named one. */
export function errorLines(lead, why, field) {
  const lines = [h('p', { class: 'error', role: 'alert', dataset: { field: 'error' } }, h('strong', {}, lead), why)];
  if (field) lines.push(h('p', { class: 'muted', dataset: { field: 'error-field' } }, 'About: ', h('code', {}, field)));
  return lines;
}
