// variant_compare.js — a variant against its parent in the compare section: the blocks one model has and the other
// lacks drawn as removed (a dashed red outline and a "removed in …" label, from `/api/compare`'s block-by-block
// `blocks`, status `removed` / `added`), and the parameters and MACs saved per stage from its `saved` rows. No
// number is computed here: each one is a field of the comparison.

import { STAGE_WORDS } from './config.js';
import { compact, exact } from './format.js';
import { h } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';

/** Paths each side has that the other lacks: side 0 (a) from `removed`, side 1 (b) from `added`. */
export function missingOnOtherSide(cmp) {
  const onA = cmp.blocks.filter((m) => m.status === 'removed' && m.a).map((m) => m.a);
  const onB = cmp.blocks.filter((m) => m.status === 'added' && m.b).map((m) => m.b);
  return [onA, onB];
}

function markRemoved(svg, paths, otherName) {
  for (const old of svg.querySelectorAll('.cmp-removed-label')) old.remove();
  for (const g of svg.querySelectorAll('g.box.cmp-removed')) {
    g.classList.remove('cmp-removed');
    g.removeAttribute('data-removed');
  }
  for (const path of paths) {
    const g = svg.querySelector(`g.box[data-path="${CSS.escape(path)}"]`);
    if (!g) continue;
    g.classList.add('cmp-removed');
    g.setAttribute('data-removed', 'true');
    const label = document.createElementNS(SVG, 'text');
    label.setAttribute('class', 'cmp-removed-label');
    label.setAttribute('x', '8');
    label.setAttribute('y', '-4');
    label.textContent = `removed in ${otherName}`;
    g.append(label);
  }
}

function savedTable(cmp, nameA, nameB) {
  const signed = (n) => (n < 0 ? `−${compact(-n)} (more)` : compact(n));
  const head = h('tr', {}, ...['Stage', `${nameA} params`, `${nameB} params`, 'params saved', `${nameA} MACs`, `${nameB} MACs`,
    'MACs saved', 'saved without attention'].map((t) => h('th', { scope: 'col' }, t)));
  const rows = cmp.saved.map((r) => h('tr', { dataset: { key: r.key } },
    h('th', { scope: 'row' }, (r.key === 'total' ? 'Total' : STAGE_WORDS[r.key]?.row ?? r.key)),
    h('td', { title: exact(r.params_a) }, compact(r.params_a)),
    h('td', { title: exact(r.params_b) }, compact(r.params_b)),
    h('td', { dataset: { field: 'params_saved', value: r.params_saved }, title: exact(r.params_saved) }, signed(r.params_saved)),
    h('td', { title: exact(r.macs_a) }, compact(r.macs_a)),
    h('td', { title: exact(r.macs_b) }, compact(r.macs_b)),
    h('td', { dataset: { field: 'macs_saved', value: r.macs_saved }, title: exact(r.macs_saved) }, signed(r.macs_saved)),
    h('td', { dataset: { field: 'macs_saved_without_attention', value: r.macs_saved_without_attention },
      title: `${exact(r.macs_without_attention_a)} → ${exact(r.macs_without_attention_b)}` }, signed(r.macs_saved_without_attention))));
  return h('table', {}, h('thead', {}, head), h('tbody', {}, rows));
}

/**
 * Called by compare.js after each draw: sides[i].diagram.element are the two SVGs, cmp the /api/compare JSON,
 * names [a, b], root the compare section.
 */
export function decorateCompare(root, sides, cmp, names) {
  if (!cmp) return;
  const [onA, onB] = missingOnOtherSide(cmp);
  markRemoved(sides[0].diagram.element, onA, names[1]);
  markRemoved(sides[1].diagram.element, onB, names[0]);
  let box = root.querySelector('.variant-saved');
  if (!box) {
    box = h('div', { class: 'variant-saved' });
    root.querySelector('.compare-differences')?.after(box);
  }
  const removed = onA.length + onB.length;
  box.replaceChildren(
    h('h3', {}, `What ${names[1]} saves against ${names[0]}, per stage`),
    h('p', { class: 'muted' }, `${removed} block${removed === 1 ? '' : 's'} of one model ${removed === 1 ? 'is' : 'are'} missing from the other `
      + '(dashed, "removed"). MACs without attention leave out the attention matmuls, as published MAC tables do.'),
    savedTable(cmp, names[0], names[1]),
  );
}
