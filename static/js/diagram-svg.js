// diagram-svg.js — the SVG pieces diagram.js draws a scene with: elements from attributes, wires (with their arrow
// markers), operation symbols, the terminals, an opened block's decoration (its inner wires, ops, labels and
// brackets) and the scene's top layers (buses, edges, skips, row labels). Stateless: every function draws what
// it is given into the parent it is given. All text goes in via textContent.

const SVG = 'http://www.w3.org/2000/svg';
const MARKERS = ['flow', 'skip', 'emb', 'ctx', 'res'];

export function el(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, String(v));
  if (text != null) node.textContent = text;
  return node;
}

function pathData(pts) {
  return pts.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(1)} ${y.toFixed(1)}`).join('');
}

function drawEdge(parent, e, ids = '') {
  const attrs = { d: pathData(e.pts), class: `wire ${e.cls}`, 'data-from': e.from, 'data-to': e.to, 'data-joint': e.joint };
  if (e.head) attrs['marker-end'] = `url(#arrow-${MARKERS.includes(e.cls) ? e.cls : 'flow'}${ids})`;
  parent.append(el('path', attrs));
  if (e.label) parent.append(el('text', { x: e.lx, y: e.ly, class: 'elabel' }, e.label));
}

function drawOp(parent, op) {
  if (op.shape === 'circle') {
    parent.append(el('circle', { cx: op.cx, cy: op.cy, r: op.r, class: 'op', 'data-op': op.id }));
    parent.append(el('text', { x: op.cx, y: op.cy + 4, class: 'op-sym', 'text-anchor': 'middle' }, op.sym));
    if (op.label) parent.append(el('text', { x: op.cx + op.r + 5, y: op.cy - 5, class: 'op-label' }, op.label));
    return;
  }
  parent.append(el('rect', { x: op.x, y: op.y, width: op.w, height: op.h, rx: op.h / 2, class: op.shape, 'data-op': op.id }));
  parent.append(el('text', { x: op.x + op.w / 2, y: op.y + op.h / 2 + 3.5, class: `${op.shape}-text`, 'text-anchor': 'middle' }, op.text));
}

function drawTerm(parent, t) {
  const g = el('g', { class: `term ${t.cls}`, 'data-term': t.id ?? null });
  if (t.title) g.append(el('title', {}, t.title));
  g.append(el('rect', { x: t.x, y: t.y, width: t.w, height: t.h, rx: t.sub ? 6 : t.h / 2 }));
  if (t.sub) {
    g.append(el('text', { x: t.x + t.w / 2, y: t.y + 12, 'text-anchor': 'middle', class: 'term-name' }, t.text));
    g.append(el('text', { x: t.x + t.w / 2, y: t.y + 24, 'text-anchor': 'middle', class: 'term-shape' }, t.sub));
  } else {
    g.append(el('text', { x: t.x + t.w / 2, y: t.y + t.h / 2 + 3.5, 'text-anchor': 'middle' }, t.text));
  }
  parent.append(g);
}

/** Keep `child` at position `index` of `parent` without moving it when it is already there: moving a focused
 * element would drop the keyboard focus. */
export function placeAt(parent, child, index) {
  const current = parent.childNodes[index];
  if (current !== child) parent.insertBefore(child, current ?? null);
}

/** The <defs> with one arrow marker per wire class; `ids` makes the ids unique per diagram. */
export function markerDefs(ids) {
  const defs = el('defs');
  for (const m of MARKERS) {
    const marker = el('marker', {
      id: `arrow-${m}${ids}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
      orient: 'auto-start-reverse', class: `marker ${m}`,
    });
    marker.append(el('path', { d: 'M0 1L10 5L0 9z' }));
    defs.append(marker);
  }
  return defs;
}

/** An opened block's decoration (wires, dots, ops, terms, labels, brackets) as the first child of `inner`;
 * brackets among `highlights` (search hits) are marked. */
export function drawDeco(inner, layout, ids, highlights) {
  const deco = el('g', { class: 'deco' });
  for (const e of layout.edges) drawEdge(deco, e, ids);
  for (const d of layout.dots) deco.append(el('circle', { cx: d.cx, cy: d.cy, r: 2.6, class: 'dot res' }));
  for (const op of layout.ops) drawOp(deco, op);
  for (const t of layout.terms) drawTerm(deco, t);
  for (const l of layout.labels) deco.append(el('text', { x: l.x, y: l.y, class: `label ${l.cls}`, 'text-anchor': l.anchor }, l.text));
  for (const b of layout.brackets) {
    const g = el('g', { class: 'bracket', 'data-path': b.path, 'data-kind': b.kind });
    if (highlights.has(b.path)) g.setAttribute('data-highlight', 'true');
    g.append(el('title', {}, `${b.path} (${b.kind}): the forward runs its children one by one`));
    g.append(el('path', { d: `M${b.x - 4} ${b.y1}h4V${b.y2}h-4`, class: 'bracket-line' }));
    g.append(el('text', { x: b.x + 3, y: b.y1 - 3, class: 'bracket-label' }, b.label));
    deco.append(g);
  }
  inner.__deco?.remove();
  inner.insertBefore(deco, inner.firstChild);
  inner.__deco = deco;
}

/** The scene's wires, skips and top-level ops, terms and row labels, each layer replaced whole. */
export function drawWires({ wires, skipsLayer, topLayer }, sc, ids) {
  const frag = document.createDocumentFragment();
  // One path per consumer; paths of a bus overlap on the trunk, so the group, not each path, is translucent.
  const buses = el('g', { class: 'buses' });
  for (const b of sc.buses) drawEdge(buses, b, ids);
  for (const d of sc.dots) buses.append(el('circle', { cx: d.cx, cy: d.cy, r: 2.4, class: `dot ${d.cls}` }));
  frag.append(buses);
  for (const e of sc.edges) drawEdge(frag, e, ids);
  wires.replaceChildren(frag);
  const skipFrag = document.createDocumentFragment();
  for (const s of sc.skips) {
    const g = el('g', { class: 'skip', 'data-skip-from': s.from, 'data-skip-to': s.to });
    g.append(el('title', {}, s.title));
    g.append(el('path', {
      d: pathData(s.pts), class: 'wire skip', 'marker-end': `url(#arrow-skip${ids})`, 'data-from': s.from, 'data-to': `${s.to}:concat`,
    }));
    g.append(el('text', { x: s.lx, y: s.ly, class: 'skip-label', 'text-anchor': 'start' }, s.label));
    skipFrag.append(g);
  }
  skipsLayer.replaceChildren(skipFrag);
  const topFrag = document.createDocumentFragment();
  for (const op of sc.ops) drawOp(topFrag, op);
  for (const t of sc.terms) drawTerm(topFrag, t);
  for (const r of sc.rowLabels ?? []) {
    topFrag.append(el('text', { x: r.x, y: r.y, class: 'row-label', 'text-anchor': 'middle' }, r.text));
    topFrag.append(el('text', { x: r.x, y: r.y + 13, class: 'row-sub', 'text-anchor': 'middle' }, r.sub));
  }
  topLayer.replaceChildren(topFrag);
}
