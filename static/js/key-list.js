// key-list.js — "the first N of a list, with the count": a titled section listing at most `limit` items and
// "… and k more" for the rest. The checkpoint panel (missing, unexpected, mismatched keys) and the LoRA panel
// (text encoder, unmatched tensors) both show their long lists this way. Items go in as DOM built by `render`.

import { h } from './dom.js';

/** A <section class="ckpt-list" data-field=field>: the heading with the count, the items, and what is left out. */
export function keyList(title, field, items, render, limit) {
  const section = h('section', { class: 'ckpt-list', dataset: { field } });
  section.append(h('h3', {}, `${title} `, h('span', { class: 'count' }, `(${items.length.toLocaleString('en-US')})`)));
  if (!items.length) {
    section.append(h('p', { class: 'muted' }, 'none'));
    return section;
  }
  const ul = h('ul', {});
  for (const item of items.slice(0, limit)) ul.append(h('li', {}, render(item)));
  section.append(ul);
  if (items.length > limit) {
    section.append(h('p', { class: 'muted' }, `… and ${(items.length - limit).toLocaleString('en-US')} more`));
  }
  return section;
}
