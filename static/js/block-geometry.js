// block-geometry.js — the geometry of one box: closed, a card; opened, its flow as a column on an axis with a
// residual lane on the left and side inputs on the right, children laid out recursively. Pure; memoised per trace.

import { FONT, SIZES as Z, textWidth } from './config.js';
import { cardSize } from './cards.js';
import { flowOf } from './flows.js';
import { shapeText } from './format.js';
import { hasRole } from './kinds.js';

function sizeOfItem(it, kids) {
  if (it.t === 'box') {
    const b = kids.get(it.path);
    return { w: b.w, h: b.h, left: b.w / 2, right: b.w / 2 };
  }
  if (it.t === 'par') {
    const ms = it.members.map((m) => kids.get(m.path));
    const w = ms.reduce((s, b) => s + b.w, 0) + Z.parGap * (ms.length - 1);
    const h = Math.max(...ms.map((b) => b.h));
    return { w, h, left: ms[0].w / 2, right: w - ms[0].w / 2 };
  }
  if (it.t === 'op') {
    const r = Z.opR;
    const label = it.label ? textWidth(it.label, FONT.label) + 6 : 0;
    return { w: 2 * r, h: 2 * r, left: r, right: r + label };
  }
  const w = Math.ceil(textWidth(it.text, FONT.shape) + 20);
  return { w, h: Z.pillH, left: w / 2, right: w / 2 };
}

function sizeOfSide(side, kids) {
  if (!side) return null;
  if (side.t === 'box') {
    const b = kids.get(side.path);
    return { w: b.w, h: b.h, total: b.h + 2 * Z.sideLabel };
  }
  const w = Math.ceil(textWidth(side.text, FONT.label) + 16);
  return { w, h: Z.termH, total: Z.termH };
}

function inShapeOf(ix, it) {
  if (it.t === 'box') return ix.nodes.get(it.path).inputs?.[0]?.shape ?? null;
  if (it.t === 'par') return ix.nodes.get(it.members[0].path).inputs?.[0]?.shape ?? null;
  return null;
}

/** The shape on each arrow: arrows[i] runs into step i; arrows[n] leaves the block. */
function arrowShapes(ix, node, flow) {
  const { items } = flow;
  const shapes = [flow.inShape];
  let cur = flow.inShape;
  items.forEach((it, i) => {
    let out = null;
    if (it.t === 'box') out = ix.nodes.get(it.path).outputs?.[0]?.shape ?? null;
    else if (it.t === 'op') out = it.out ?? cur;
    else if (it.t === 'pill' || it.t === 'note') {
      out = it.out ?? (i + 1 < items.length ? inShapeOf(ix, items[i + 1]) : node.outputs?.[0]?.shape) ?? cur;
    }
    cur = out ?? cur;
    shapes.push(it.t === 'par' ? null : cur);
  });
  const last = node.outputs?.[0]?.shape;
  if (last) shapes[items.length] = last;
  return shapes;
}

/** What produces the time embedding the blocks read: the time embedding, or its sum with the label embedding. */
function embProducer(ix) {
  if (ix.blocks.some((b) => hasRole(b.category, 'label'))) return ':add_label';
  return ix.blocks.find((b) => hasRole(b.category, 'timestep'))?.path ?? ':t';
}

/** The side input drawn for a step: none for an opened box whose inside shows where the signal goes. */
function sideOf(it, kids) {
  const side = it.side;
  if (!side) return null;
  if (side.t === 'term' && (side.cls === 'emb' || side.cls === 'ctx') && it.t === 'box' && kids.get(it.path).expanded) return null;
  return side;
}

/** The widths of an opened block's flow: the residual lane, the main column around its axis, the bracket lane
 * and the side inputs on the right; with each step's size and side input. */
function measureFlow(ix, flow, kids) {
  const { items, residuals } = flow;
  const sizes = items.map((it) => sizeOfItem(it, kids));
  const sideItems = items.map((it) => sideOf(it, kids));
  const sides = sideItems.map((side) => sizeOfSide(side, kids));
  const viaW = Math.max(0, ...residuals.flatMap((r) => r.via.map((p) => kids.get(p).w)));
  const laneW = residuals.length ? Math.max(Z.resLane, viaW ? viaW + 16 : 0) : 0;
  const mainL = Math.max(20, ...sizes.map((s) => s.left));
  const mainR = Math.max(20, ...sizes.map((s) => s.right), 70); // 70: room for the shape labels on arrows
  const axis = laneW + (laneW ? 8 : 0) + mainL;
  const brackets = flow.brackets
    .map((b) => ({ ...b, label: b.path.slice(b.path.lastIndexOf('.') + 1) }))
    .map((b) => {
      const rows = [];
      items.forEach((it, i) => {
        if (it.t === 'box' && b.members.includes(it.path)) rows.push(i);
      });
      return { ...b, rows };
    })
    .filter((b) => b.rows.length);
  // A bracket's name goes above its line: the lane needs room for the line (its name can overhang the gap).
  const bracketW = brackets.length ? Z.bracketGap + 10 : 0;
  const sideW = Math.max(0, ...sides.map((s) => (s ? s.w : 0)));
  const sideX = axis + mainR + bracketW + Z.sideGap;
  const w = Math.ceil(sideW ? sideX + sideW : axis + mainR + bracketW);
  return { sizes, sideItems, sides, axis, laneX: laneW / 2, mainR, sideX, w, brackets };
}

/** The rows, top to bottom: {top, rowH, cy (the axis crossing), itemY, sideY}, and the flow's height. */
function flowRows(items, { sizes, sides, sideItems }) {
  const rows = [];
  let y = Z.gap;
  items.forEach((it, i) => {
    const sd = sides[i];
    if (sd && sideItems[i].t === 'box') {
      // A side box (emb_layers) sits above its operation: its output runs down, then into the ⊕ or ×.
      const cy = y + Z.sideLabel + sd.h + 14;
      const rowH = cy - y + Math.max(sizes[i].h / 2, Z.opR) + 4;
      rows.push({ top: y, rowH, cy, itemY: cy - sizes[i].h / 2, sideY: y + Z.sideLabel });
      y += rowH + Z.gap;
      return;
    }
    const rowH = Math.max(sizes[i].h, sd ? sd.total : 0);
    const cy = y + rowH / 2;
    rows.push({ top: y, rowH, cy, itemY: cy - sizes[i].h / 2 });
    y += rowH + Z.gap;
  });
  return { rows, h: Math.ceil(y) };
}

/** Side input on the right of step `it` (row r): a box (emb_layers) above the operation it feeds, or a terminal
 * level with its step. */
function placeSide(out, ix, it, i, geo, r, kids) {
  const side = geo.sideItems[i];
  const sd = geo.sides[i];
  const { axis, sideX } = geo;
  const tipX = it.t === 'op' ? axis + Z.opR : axis + geo.sizes[i].w / 2;
  const cls = side.cls ?? side.feed ?? 'emb';
  const signal = cls === 'ctx' ? ':context' : embProducer(ix);
  if (side.t === 'box') {
    const sy = r.sideY;
    out.placements.push({ box: kids.get(side.path), x: sideX, y: sy });
    const cx = sideX + sd.w / 2;
    // The block's one time-embedding input enters here, and the box's output feeds the operation.
    out.labels.push({ x: cx, y: sy - Z.sideLabel + 5, text: side.feedText, cls: `feed ${cls}`, anchor: 'middle' });
    out.edges.push({ pts: [[cx, sy - Z.sideLabel + 8], [cx, sy]], cls, head: true, from: signal, to: side.path });
    out.edges.push({ pts: [[cx, sy + sd.h], [cx, r.cy], [tipX, r.cy]], cls, head: true, from: side.path, to: it.id });
  } else {
    const sy = r.cy - sd.h / 2;
    out.terms.push({ x: sideX, y: sy, w: sd.w, h: sd.h, text: side.text, cls, title: side.title ?? null });
    out.edges.push({ pts: [[sideX, r.cy], [tipX, r.cy]], cls, head: true, from: cls === 'skip' ? side.title?.slice(5) : signal, to: it.id });
  }
}

/** Every step on the axis (boxes, side-by-side members, operations, pills) with its side input; returns the
 * members' geometry of each side-by-side step, by step index. */
function placeSteps(out, ix, items, geo, rows, kids) {
  const { axis } = geo;
  const parGeo = new Map();
  items.forEach((it, i) => {
    const s = geo.sizes[i];
    const r = rows[i];
    if (it.t === 'box') {
      out.placements.push({ box: kids.get(it.path), x: axis - s.w / 2, y: r.itemY });
    } else if (it.t === 'par') {
      // The first member sits on the axis so the running tensor drops straight into it (q in attention).
      let x = axis - kids.get(it.members[0].path).w / 2;
      const ms = [];
      for (const m of it.members) {
        const b = kids.get(m.path);
        out.placements.push({ box: b, x, y: r.itemY });
        ms.push({ ...m, cx: x + b.w / 2, top: r.itemY, bottom: r.itemY + b.h });
        x += b.w + Z.parGap;
      }
      parGeo.set(i, ms);
    } else if (it.t === 'op') {
      out.ops.push({ shape: 'circle', cx: axis, cy: r.cy, r: Z.opR, sym: it.sym, label: it.label, id: it.id });
    } else {
      out.ops.push({ shape: it.t, x: axis - s.w / 2, y: r.itemY, w: s.w, h: s.h, text: it.text, id: it.id });
    }
    if (geo.sideItems[i]) placeSide(out, ix, it, i, geo, r, kids);
  });
  return parGeo;
}

/** The fork into a side-by-side step at forkY: one context input forked to the keys and values, the running
 * tensor to the other members. */
function forkInto(out, members, axis, forkY, from) {
  const ctxMembers = members.filter((m) => m.feed === 'ctx');
  if (ctxMembers.length) {
    // One context input, forked to the keys and the values.
    const x0 = ctxMembers[0].cx;
    const x1 = ctxMembers.at(-1).cx;
    const top = Math.min(...ctxMembers.map((m) => m.top));
    const jy = top - 9;
    out.labels.push({ x: (x0 + x1) / 2, y: jy - 4, text: 'context', cls: 'feed ctx', anchor: 'middle' });
    for (const m of ctxMembers) {
      out.edges.push({
        pts: [[(x0 + x1) / 2, jy - 1], [(x0 + x1) / 2, jy], [m.cx, jy], [m.cx, m.top]], cls: 'ctx', head: true,
        from: ':context', to: m.path, joint: 'start',
      });
    }
  }
  for (const m of members) {
    if (m.feed === 'ctx') continue;
    out.edges.push({ pts: [[axis, forkY], [m.cx, forkY], [m.cx, m.top]], cls: 'flow', head: true, from, to: m.path, joint: 'start' });
  }
}

/** Main arrows: into each step, and out of the last one, labelled with the shape they carry. */
function mainArrows(out, { ix, node, flow, geo, rows, h, parGeo, idOf }) {
  const { items } = flow;
  const { axis, sizes } = geo;
  const shapes = arrowShapes(ix, node, flow);
  const n = items.length;
  const exitOf = (i) => {
    if (items[i].t === 'par') return rows[i].itemY + sizes[i].h + Z.gap / 2;
    return rows[i].itemY + sizes[i].h;
  };
  for (let i = 0; i <= n; i += 1) {
    const y0 = i === 0 ? 0 : exitOf(i - 1);
    const intoPar = i < n && items[i].t === 'par';
    const fromPar = i > 0 && items[i - 1].t === 'par';
    const y1 = i === n ? h : intoPar ? rows[i].top - Z.gap / 2 + 6 : rows[i].itemY;
    const label = shapeText(shapes[i]);
    // One edge per producer → consumer pair. Into a side-by-side step the trunk runs on into the first member
    // (q, on the axis), so the fork draws only the others; out of one, the last member's (v's) arrow joins the
    // trunk, so it is one edge with the trunk rather than a second v → attend.
    const first = intoPar ? parGeo.get(i)[0] : null;
    const last = fromPar ? parGeo.get(i - 1).at(-1) : null;
    const pts = [[axis, y0], [axis, first ? first.top : y1]];
    if (last) pts.unshift([last.cx, last.bottom], [last.cx, y0]);
    out.edges.push({
      pts,
      cls: 'flow',
      head: true,
      label: fromPar ? '' : label,
      lx: axis + 6,
      ly: (y0 + y1) / 2 + 3.5,
      from: last ? last.path : idOf(i - 1),
      to: first ? first.path : idOf(i),
    });
    if (fromPar) {
      for (const m of parGeo.get(i - 1).slice(0, -1)) {
        out.edges.push({ pts: [[m.cx, m.bottom], [m.cx, y0], [axis, y0]], cls: 'flow', head: false, from: m.path, to: idOf(i), joint: 'end' });
      }
    }
    if (intoPar) forkInto(out, parGeo.get(i).slice(1), axis, y1, idOf(i - 1));
  }
}

/** Residual connections: split on the arrow into `from`, run down the lane (with the boxes on it), join at the
 * `to` operation. */
function residualLanes(out, { flow, geo, rows, kids, idOf }) {
  const { items, residuals } = flow;
  const { axis, laneX } = geo;
  for (const res of residuals) {
    const i = items.indexOf(res.from);
    const j = items.indexOf(res.to);
    if (i < 0 || j < 0) continue;
    const ys = rows[i].top - Z.gap / 2;
    const yj = rows[j].cy;
    out.edges.push({ pts: [[axis, ys], [laneX, ys], [laneX, yj], [axis - Z.opR, yj]], cls: 'res', head: true, from: idOf(i - 1), to: res.to.id, joint: 'start' });
    out.dots.push({ cx: axis, cy: ys });
    const vias = res.via.map((p) => kids.get(p));
    const total = vias.reduce((s, b) => s + b.h, 0) + 10 * Math.max(0, vias.length - 1);
    let vy = Math.max(ys + 10, (ys + yj) / 2 - total / 2);
    for (const b of vias) {
      out.placements.push({ box: b, x: laneX - b.w / 2, y: vy });
      vy += b.h + 10;
    }
  }
}

/** An opened block's inside: measure the columns, stack the rows, then place the steps, the main arrows, the
 * residual lanes and the brackets. Every list keeps the order the renderer draws in. */
function layoutFlow(ix, path, kids) {
  const node = ix.nodes.get(path);
  const flow = flowOf(ix, path);
  const { items } = flow;
  const geo = measureFlow(ix, flow, kids);
  const { rows, h } = flowRows(items, geo);
  const out = { placements: [], edges: [], ops: [], labels: [], terms: [], dots: [] };
  const parGeo = placeSteps(out, ix, items, geo, rows, kids);
  const n = items.length;
  // Edges name what they join: a step's id, or the block's own input and output (`path:in`, `path:out`).
  const idOf = (i) => (i < 0 ? `${path}:in` : i >= n ? `${path}:out` : items[i].id);
  mainArrows(out, { ix, node, flow, geo, rows, h, parGeo, idOf });
  residualLanes(out, { flow, geo, rows, kids, idOf });
  const brackets = geo.brackets.map((b) => {
    const first = b.rows[0];
    const last = b.rows[b.rows.length - 1];
    return {
      path: b.path,
      kind: ix.nodes.get(b.path)?.kind ?? '',
      label: b.label,
      x: geo.axis + geo.mainR + Z.bracketGap,
      y1: rows[first].itemY,
      y2: rows[last].itemY + geo.sizes[last].h,
    };
  });
  const { placements, edges, ops, labels, terms, dots } = out;
  return { w: geo.w, h, placements, edges, ops, labels, terms, dots, brackets };
}

function makeBox(ix, path, memo, inner, expandable, sig = '') {
  const node = ix.nodes.get(path);
  const top = ix.blockByPath.has(path);
  const card = cardSize(ix, node, top);
  memo.nextId += 1;
  const box = {
    id: memo.nextId,
    path,
    node,
    top,
    expandable,
    expanded: Boolean(inner),
    cardW: card.w,
    cardH: card.h,
    w: card.w,
    h: card.h,
    inner,
    sig,
    // Boxes drawn in this subtree (itself included): the renderer culls off-screen content past a threshold.
    count: 1 + (inner ? inner.placements.reduce((n, pl) => n + pl.box.count, 0) : 0),
  };
  if (inner) {
    box.w = Math.max(card.w, inner.w + 2 * Z.padX);
    box.h = card.h + inner.h + Z.padBottom;
  }
  return box;
}

/** A box for `path`, opened when it is in `expanded` (its children laid out recursively). */
export function layoutBox(ix, path, expanded, memo) {
  let entry = memo.boxes.get(path);
  if (!entry) {
    entry = { closed: null, open: null };
    memo.boxes.set(path, entry);
  }
  const flow = flowOf(ix, path);
  const expandable = flow.boxPaths.length > 0;
  if (!expandable || !expanded.has(path)) {
    if (!entry.closed) entry.closed = makeBox(ix, path, memo, null, expandable);
    return entry.closed;
  }
  const kids = new Map();
  let sig = '';
  for (const p of flow.boxPaths) {
    const b = layoutBox(ix, p, expanded, memo);
    kids.set(p, b);
    sig += `${b.id},`;
  }
  if (entry.open && entry.open.sig === sig) return entry.open;
  entry.open = makeBox(ix, path, memo, layoutFlow(ix, path, kids), true, sig);
  return entry.open;
}

export function createMemo() {
  return { boxes: new Map(), nextId: 0 };
}
