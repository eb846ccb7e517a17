// dom.js — building DOM nodes from data without markup: h('dt', {class: 'x'}, 'text', child) and definition-list
// rows. Every string becomes a text node, so data (tensor names, file names, reasons) is never parsed as HTML.

/** An element with attributes (`dataset` merged into data-*; null/false skipped) and children (strings as text). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** A <dt>/<dd> pair for a definition list; the <dd> carries data-field for tests and styles. */
export function row(label, field, ...value) {
  return [h('dt', {}, label), h('dd', { dataset: { field } }, ...value)];
}

/**
 * A module path as text with a line-break opportunity after each dot: "output_blocks.5.1.attn2" wraps between its
 * parts, never inside a word ("transfor-mer"). The text read back (innerText) is the path unchanged.
 */
export function breakAtDots(text) {
  const parts = String(text).split('.');
  return parts.flatMap((part, i) => (i < parts.length - 1 ? [`${part}.`, document.createElement('wbr')] : [part]));
}
