// layout.js — turns a trace and the set of opened blocks into positioned boxes and edges. PURE: no DOM, no
// globals; the same inputs give the same scene. The U skeleton is placed by our own rules from the trace's
// block map (stage, level): the down stage descends on the left one row per resolution level, the middle block
// sits at the bottom, the up stage climbs back on the right, each up row level with its down row.
// Inside an opened block the children are drawn as a top-to-bottom data flow in execution order, with the
// operations the forward performs between them (residual adds, the time embedding, reshapes, attention).
//
// A memo ({boxes: Map, nextId}) may be passed in and kept by the caller for one trace: the layout of any subtree
// whose open/closed state did not change is reused as the same object, so a toggle only re-lays the opened
// block's ancestors and the renderer can skip every unchanged subtree by identity.

import { FONT, SIZES as Z, CATEGORY_SHORT, textWidth } from './config.js';
import { shapeText } from './format.js';

/** Lookups built once per trace: nodes by path, execution order (the trace's `order`; Infinity for a module that
 * never ran), and which top-level blocks read the time embedding / the context (the trace's takes_emb and
 * takes_context). */
export function indexTrace(trace) {
  const nodes = new Map();
  const order = new Map();
  for (const n of trace.nodes) {
    nodes.set(n.path, n);
    order.set(n.path, n.order ?? Infinity);
  }
  const uses = new Map(trace.blocks.map((b) => [b.path, { emb: b.takes_emb, ctx: b.takes_context }]));
  const root = nodes.get('');
  const totals = {
    flops: trace.totals.flops || root?.flops || 0,
    params: trace.totals.params || root?.params || 0,
    time: root?.time_ms ?? null,
  };
  // Bars on the cards are scaled so the largest top-level block fills its card.
  const maxTop = { flops: 0, params: 0, time: 0 };
  for (const b of trace.blocks) {
    const n = nodes.get(b.path);
    if (!n) continue;
    maxTop.flops = Math.max(maxTop.flops, n.flops || 0);
    maxTop.params = Math.max(maxTop.params, n.params || 0);
    maxTop.time = Math.max(maxTop.time, n.time_ms || 0);
  }
  return {
    trace,
    nodes,
    order,
    uses,
    totals,
    maxTop,
    blocks: trace.blocks,
    blockByPath: new Map(trace.blocks.map((b) => [b.path, b])),
    skipInto: new Map(trace.skips.map((s) => [s.to, s])),
    flows: new Map(), // path → flow, filled lazily by flowOf
  };
}

/** The value of a metric for a node, and its share of the whole model. */
export function metricOf(ix, node, metric) {
  const value = metric === 'time' ? node.time_ms : node[metric];
  const total = ix.totals[metric];
  return { value: value ?? null, share: value != null && total ? value / total : null };
}

/** Fraction of a card's bar to fill: the largest top-level block fills it. */
export function barFraction(ix, node, metric) {
  const { value } = metricOf(ix, node, metric);
  const max = ix.maxTop[metric];
  return value && max ? Math.min(1, value / max) : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Card text: what a box says when closed (also the header of an opened box).

const TOP_SUMMARY = {
  time_embedding: 'Time embedding',
  label_embedding: 'Label / y embedding',
  input_conv: 'Input conv',
  output_head: 'Output: norm · SiLU · conv',
  codebook_head: 'Codebook head',
};

function topSummary(ix, node) {
  if (TOP_SUMMARY[node.category]) return TOP_SUMMARY[node.category];
  const kids = node.children.map((c) => ix.nodes.get(c)).filter((c) => ix.order.get(c.path) !== Infinity);
  const words = kids.map((c) => {
    if (c.category === 'resblock' && c.resample) return c.resample.direction === 'down' ? 'Res ↓2' : 'Res ↑2';
    return CATEGORY_SHORT[c.category] ?? c.kind;
  });
  return words.join(' · ') || node.kind;
}

/** Three lines for a card: title, subtitle (kind or summary), and the output shape. */
export function cardLines(ix, node) {
  const lines = ownCardLines(ix, node);
  // The "Names" switch (names.js) may give the title and subtitle in another naming scheme.
  const named = ix.cardLabel?.(ix, node, lines);
  return named ? { ...lines, ...named } : lines;
}

function ownCardLines(ix, node) {
  const out = shapeText(node.outputs?.[0]?.shape);
  if (ix.blockByPath.has(node.path)) return { title: node.path, sub: topSummary(ix, node), shape: out };
  if (/^\d+$/.test(node.name)) {
    const parent = ix.nodes.get(node.parent);
    return { title: node.kind, sub: `${parent?.name ?? ''}.${node.name}`, shape: out };
  }
  return { title: node.name, sub: node.kind, shape: out };
}

function cardSize(ix, node, top) {
  const lines = cardLines(ix, node);
  const need = Math.max(
    textWidth(lines.title, FONT.title * 1.08, top) + 16, // titles are bold (top ones mono paths); 16: the ± sign
    textWidth(lines.sub, FONT.sub),
    textWidth(lines.shape, FONT.shape, true) + 44, // room for the share, right-aligned
  ) + 22;
  if (top) return { w: Math.max(Z.top.w, Math.ceil(need)), h: Z.top.h };
  return { w: Math.min(Z.inner.maxW, Math.max(Z.inner.minW, Math.ceil(need))), h: Z.inner.h };
}

// ---------------------------------------------------------------------------------------------------------------
// Flows: what an opened block shows, as a list of steps. Built once per path and trace (no geometry here).

/** The children to draw, in execution order. Containers the forward walks by hand (not called themselves, like
 * a ModuleList or a resampling ResBlock's in_layers) and single Sequential wrappers (FeedForward.net) dissolve
 * into their children, and are remembered as brackets so they stay visible and selectable. */
function flatten(ix, path, brackets) {
  const node = ix.nodes.get(path);
  const out = [];
  for (const c of node.children) {
    if (ix.order.get(c) === Infinity) continue; // never ran in this forward (e.g. h_upd without resampling)
    const cn = ix.nodes.get(c);
    const wrapper = node.children.length === 1 && cn.category === 'sequence';
    if (cn.children.length > 0 && (!cn.called || wrapper)) {
      const inner = flatten(ix, c, brackets);
      if (inner.length) {
        brackets.push({ path: c, members: inner });
        out.push(...inner);
      }
    } else {
      out.push(c);
    }
  }
  return out.sort((a, b) => ix.order.get(a) - ix.order.get(b));
}

/** " · 8 heads × 40", from the trace's attention facts. */
function headsOf(node) {
  const a = node.attention;
  return a ? ` · ${a.heads} heads × ${a.head_channels}` : '';
}

/** Per-category recipes: where the forward adds, reshapes or attends between the children. */
const RECIPES = {
  resblock(h) {
    const emb = h.take('emb_layers');
    const skip = h.take('skip_connection');
    const xUpd = h.take('x_upd');
    const side = emb ? { t: 'box', path: emb, feed: 'emb', feedText: 'time embedding' } : null;
    let at = h.idx('out_layers');
    if (emb) {
      let op;
      if (h.node.resblock?.scale_shift_norm) {
        // Scale-shift: the embedding modulates the normalised h inside out_layers, after its GroupNorm.
        op = { t: 'op', sym: '×', label: 'norm(h)·(1+scale)+shift', side };
        if (at >= 0 && h.rel(at) === 'out_layers.0') at += 1;
      } else {
        op = { t: 'op', sym: '+', label: 'add time embedding', side };
      }
      h.insert(at >= 0 ? at : h.items.length, op);
    }
    const first = h.items[0];
    const plus = { t: 'op', sym: '+', label: 'residual add' };
    h.items.push(plus);
    if (first) h.residual(first, plus, [xUpd, skip].filter(Boolean));
  },

  spatial_transformer(h) {
    // Linear projections run on tokens (reshape first); 1×1 conv projections run on the map (reshape after).
    const linear = h.node.attention?.projection === 'linear';
    const pin = h.idx('proj_in');
    if (pin >= 0) h.insert(linear ? pin : pin + 1, { t: 'note', text: 'to tokens: B×C×H×W → B×(H·W)×C' });
    const pout = h.idx('proj_out');
    if (pout >= 0) h.insert(linear ? pout + 1 : pout, { t: 'note', text: 'back to a map: B×(H·W)×C → B×C×H×W' });
    const first = h.items[0];
    const plus = { t: 'op', sym: '+', label: 'residual add' };
    h.items.push(plus);
    if (first) h.residual(first, plus, []);
  },

  transformer_block(h) {
    for (const [norm, step] of [['norm1', 'attn1'], ['norm2', 'attn2'], ['norm3', 'ff']]) {
      const n = h.idx(norm);
      const i = h.idx(step);
      if (i < 0) continue;
      const plus = { t: 'op', sym: '+', label: 'residual add' };
      h.insert(i + 1, plus);
      h.residual(h.items[n >= 0 && n < i ? n : i], plus, []);
    }
  },

  self_attention(h) {
    RECIPES.cross_attention(h);
  },

  cross_attention(h) {
    const q = h.take('to_q');
    const k = h.take('to_k');
    const v = h.take('to_v');
    if (!q || !k || !v) return;
    const ctx = h.node.takes_context;
    const par = {
      t: 'par',
      members: [
        { path: q, feed: 'x' },
        { path: k, feed: ctx ? 'ctx' : 'x' },
        { path: v, feed: ctx ? 'ctx' : 'x' },
      ],
    };
    const attend = { t: 'pill', text: `softmax(QKᵀ/√d)·V${headsOf(h.node)}` };
    h.items.unshift(par, attend);
  },

  attention_block(h) {
    h.insert(0, { t: 'note', text: 'flatten: B×C×H×W → B×C×(H·W)' });
    const qkv = h.idx('qkv');
    h.insert(qkv >= 0 ? qkv + 1 : h.items.length, {
      t: 'pill',
      text: `split q, k, v · softmax(QKᵀ/√d)·V${headsOf(h.node)}`,
    });
    h.items.push({ t: 'note', text: 'back to a map: B×C×H×W', out: h.node.outputs?.[0]?.shape });
    const plus = { t: 'op', sym: '+', label: 'residual add' };
    h.items.push(plus);
    h.residual(h.items[0], plus, []);
  },

  geglu(h) {
    h.items.push({ t: 'pill', text: 'halves: value · GELU(gate)', out: h.node.outputs?.[0]?.shape });
  },

  upsample(h) {
    const conv = h.idx('conv');
    h.insert(conv >= 0 ? conv : h.items.length, { t: 'pill', text: 'nearest-neighbour ×2' });
  },
};

/** The flow of an opened block: steps, residual connections and brackets (no geometry). Cached per path. */
export function flowOf(ix, path) {
  const cached = ix.flows.get(path);
  if (cached) return cached;
  const node = ix.nodes.get(path);
  const brackets = [];
  const members = node.children.length ? flatten(ix, path, brackets) : [];
  const residuals = [];
  const prefix = path ? `${path}.` : '';
  const h = {
    ix,
    node,
    items: members.map((p) => ({ t: 'box', path: p })),
    rel(i) {
      const it = h.items[i];
      return it && it.t === 'box' ? it.path.slice(prefix.length) : null;
    },
    idx(name) {
      return h.items.findIndex((it, i) => {
        const r = h.rel(i);
        return r !== null && (r === name || r.startsWith(`${name}.`));
      });
    },
    take(name) {
      const i = h.items.findIndex((it, j) => h.rel(j) === name);
      if (i < 0) return null;
      return h.items.splice(i, 1)[0].path;
    },
    insert(i, item) {
      h.items.splice(i, 0, item);
    },
    residual(from, to, via) {
      residuals.push({ from, to, via });
    },
  };
  if (members.length) RECIPES[node.category]?.(h);

  let inShape = node.inputs?.[0]?.shape ?? null;
  const skip = ix.skipInto.get(path);
  if (skip && members.length) {
    // An output block first concatenates the skip from its input block along the channels.
    const hShape = [...skip.concat_shape];
    hShape[1] = skip.concat_shape[1] - skip.shape[1];
    inShape = hShape;
    h.items.unshift({
      t: 'op',
      sym: '⧺',
      label: 'concatenate channels',
      out: skip.concat_shape,
      side: { t: 'term', text: `skip ${shapeText(skip.shape)}`, cls: 'skip', title: `from ${skip.from}` },
    });
  }
  if (node.category === 'time_embedding' && members.length) {
    inShape = ix.trace.input?.timesteps?.shape ?? inShape;
    h.items.unshift({ t: 'note', text: 'sinusoidal features of t', out: node.inputs?.[0]?.shape });
  }
  // What each box consumes besides the running tensor, as a small labelled input on its right.
  for (const it of h.items) {
    if (it.t !== 'box' || it.side) continue;
    const n = ix.nodes.get(it.path);
    if (n.takes_emb) it.side = { t: 'term', text: 'time emb', cls: 'emb' };
    else if (n.takes_context) it.side = { t: 'term', text: 'context', cls: 'ctx' };
  }
  const boxPaths = [];
  for (const it of h.items) {
    if (it.t === 'box') boxPaths.push(it.path);
    if (it.t === 'par') for (const m of it.members) boxPaths.push(m.path);
    if (it.side?.t === 'box') boxPaths.push(it.side.path);
  }
  for (const r of residuals) boxPaths.push(...r.via);
  const flow = { items: h.items, residuals, brackets, boxPaths, inShape };
  ix.flows.set(path, flow);
  return flow;
}

/** Every path that can be opened, from the top-level blocks down to the leaves (for "Expand all"). */
export function expandablePaths(ix) {
  const out = [];
  const walk = (path) => {
    const flow = flowOf(ix, path);
    if (!flow.boxPaths.length) return;
    out.push(path);
    for (const p of flow.boxPaths) walk(p);
  };
  for (const b of ix.blocks) if (ix.nodes.has(b.path)) walk(b.path);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Geometry of one opened block: a column on an axis, a residual lane on the left, side inputs on the right.

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

function layoutFlow(ix, path, kids) {
  const node = ix.nodes.get(path);
  const flow = flowOf(ix, path);
  const { items, residuals } = flow;
  const sizes = items.map((it) => sizeOfItem(it, kids));
  const sides = items.map((it) => sizeOfSide(it.side, kids));
  const viaW = Math.max(0, ...residuals.flatMap((r) => r.via.map((p) => kids.get(p).w)));
  const laneW = residuals.length ? Math.max(Z.resLane, viaW ? viaW + 16 : 0) : 0;
  const mainL = Math.max(20, ...sizes.map((s) => s.left));
  const mainR = Math.max(20, ...sizes.map((s) => s.right), 70); // 70: room for the shape labels on arrows
  const axis = laneW + (laneW ? 8 : 0) + mainL;
  const laneX = laneW / 2;
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

  // Rows, top to bottom.
  const rows = [];
  let y = Z.gap;
  items.forEach((it, i) => {
    const rowH = Math.max(sizes[i].h, sides[i] ? sides[i].total : 0);
    const cy = y + rowH / 2;
    rows.push({ top: y, rowH, cy, itemY: cy - sizes[i].h / 2 });
    y += rowH + Z.gap;
  });
  const h = Math.ceil(y);

  const placements = [];
  const edges = [];
  const ops = [];
  const labels = [];
  const terms = [];
  const dots = [];
  const shapes = arrowShapes(ix, node, flow);
  const parGeo = new Map();

  items.forEach((it, i) => {
    const s = sizes[i];
    const r = rows[i];
    if (it.t === 'box') {
      placements.push({ box: kids.get(it.path), x: axis - s.w / 2, y: r.itemY });
    } else if (it.t === 'par') {
      // The first member sits on the axis so the running tensor drops straight into it (q in attention).
      let x = axis - kids.get(it.members[0].path).w / 2;
      const ms = [];
      for (const m of it.members) {
        const b = kids.get(m.path);
        placements.push({ box: b, x, y: r.itemY });
        ms.push({ ...m, cx: x + b.w / 2, top: r.itemY, bottom: r.itemY + b.h });
        x += b.w + Z.parGap;
      }
      parGeo.set(i, ms);
    } else if (it.t === 'op') {
      ops.push({ shape: 'circle', cx: axis, cy: r.cy, r: Z.opR, sym: it.sym, label: it.label });
    } else {
      ops.push({ shape: it.t, x: axis - s.w / 2, y: r.itemY, w: s.w, h: s.h, text: it.text });
    }
    // Side input on the right, level with the step it feeds.
    const side = it.side;
    if (side) {
      const sd = sides[i];
      const sy = r.cy - sd.h / 2;
      const tipX = it.t === 'op' ? axis + Z.opR : axis + s.w / 2;
      const cls = side.cls ?? side.feed ?? 'emb';
      if (side.t === 'box') {
        placements.push({ box: kids.get(side.path), x: sideX, y: sy });
        const cx = sideX + sd.w / 2;
        labels.push({ x: cx, y: sy - Z.sideLabel + 5, text: side.feedText, cls: `feed ${cls}`, anchor: 'middle' });
        edges.push({ pts: [[cx, sy - Z.sideLabel + 8], [cx, sy]], cls, head: true });
      } else {
        terms.push({ x: sideX, y: sy, w: sd.w, h: sd.h, text: side.text, cls, title: side.title ?? null });
      }
      edges.push({ pts: [[sideX, r.cy], [tipX, r.cy]], cls, head: true });
    }
  });

  // Main arrows: into each step, and out of the last one.
  const n = items.length;
  const exitOf = (i) => {
    if (items[i].t === 'par') return rows[i].itemY + sizes[i].h + Z.gap / 2;
    return rows[i].itemY + sizes[i].h;
  };
  for (let i = 0; i <= n; i += 1) {
    const y0 = i === 0 ? 0 : exitOf(i - 1);
    const intoPar = i < n && items[i].t === 'par';
    const y1 = i === n ? h : intoPar ? rows[i].top - Z.gap / 2 + 6 : rows[i].itemY;
    const label = shapeText(shapes[i]);
    edges.push({
      pts: [[axis, y0], [axis, y1]],
      cls: 'flow',
      head: !intoPar,
      label: i > 0 && items[i - 1].t === 'par' ? '' : label,
      lx: axis + 6,
      ly: (y0 + y1) / 2 + 3.5,
    });
    if (i > 0 && items[i - 1].t === 'par') {
      for (const m of parGeo.get(i - 1)) edges.push({ pts: [[m.cx, m.bottom], [m.cx, y0], [axis, y0]], cls: 'flow', head: false });
    }
    if (intoPar) {
      const forkY = y1;
      for (const m of parGeo.get(i)) {
        if (m.feed === 'ctx') {
          labels.push({ x: m.cx, y: m.top - 11, text: 'context', cls: 'feed ctx', anchor: 'middle' });
          edges.push({ pts: [[m.cx, m.top - 8], [m.cx, m.top]], cls: 'ctx', head: true });
        } else {
          edges.push({ pts: [[axis, forkY], [m.cx, forkY], [m.cx, m.top]], cls: 'flow', head: true });
        }
      }
    }
  }

  // Residual connections: split on the arrow into `from`, run down the lane, join at the `to` operation.
  for (const res of residuals) {
    const i = items.indexOf(res.from);
    const j = items.indexOf(res.to);
    if (i < 0 || j < 0) continue;
    const ys = rows[i].top - Z.gap / 2;
    const yj = rows[j].cy;
    edges.push({ pts: [[axis, ys], [laneX, ys], [laneX, yj], [axis - Z.opR, yj]], cls: 'res', head: true });
    dots.push({ cx: axis, cy: ys });
    const vias = res.via.map((p) => kids.get(p));
    const total = vias.reduce((s, b) => s + b.h, 0) + 10 * Math.max(0, vias.length - 1);
    let vy = Math.max(ys + 10, (ys + yj) / 2 - total / 2);
    for (const b of vias) {
      placements.push({ box: b, x: laneX - b.w / 2, y: vy });
      vy += b.h + 10;
    }
  }

  const bracketGeo = brackets.map((b) => {
    const first = b.rows[0];
    const last = b.rows[b.rows.length - 1];
    const node2 = ix.nodes.get(b.path);
    return {
      path: b.path,
      kind: node2?.kind ?? '',
      label: b.label,
      x: axis + mainR + Z.bracketGap,
      y1: rows[first].itemY,
      y2: rows[last].itemY + sizes[last].h,
    };
  });

  return { w, h, placements, edges, ops, labels, terms, dots, brackets: bracketGeo };
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

// ---------------------------------------------------------------------------------------------------------------
// The U.

function termOf(text, cls, title = null) {
  return { text, cls, title, w: Math.ceil(textWidth(text, FONT.sub) + 20), h: Z.termH };
}

/**
 * The whole scene: top-level boxes placed on the U, the flow between them, skip connections in lanes above the
 * up row they enter, and the time-embedding and context buses with a drop into every block that consumes them.
 * `align` (from alignScenes) makes rows at least as tall as another model's, so two U's side by side line up by
 * level; `scene.geometry` reports the natural heights it needs.
 */
export function layoutScene(ix, expanded, memo = createMemo(), align = null) {
  const boxes = new Map();
  for (const b of ix.blocks) if (ix.nodes.has(b.path)) boxes.set(b.path, layoutBox(ix, b.path, expanded, memo));

  const header = [];
  const down = [];
  const up = [];
  let mid = null;
  let outPath = null;
  for (const b of ix.blocks) {
    if (!boxes.has(b.path)) continue;
    if (b.stage === 'embed') header.push(b.path);
    else if (b.stage === 'down') (down[b.level] ??= []).push(b.path);
    else if (b.stage === 'up') (up[b.level] ??= []).push(b.path);
    else if (b.stage === 'mid') mid = b.path;
    else if (b.stage === 'out') outPath = b.path;
  }
  const levels = Math.max(down.length, up.length, 1);
  for (let L = 0; L < levels; L += 1) {
    down[L] ??= [];
    up[L] ??= [];
  }
  if (outPath) up[0].push(outPath);

  const input = ix.trace.input ?? {};
  const xTerm = termOf(`x ${shapeText(input.x?.shape)}`, 'io', 'the noisy latent');
  const outTerm = termOf(`out ${shapeText(ix.nodes.get(outPath ?? '')?.outputs?.[0]?.shape ?? input.x?.shape)}`, 'io', 'the prediction');
  const ctxShape = input.context?.shape;
  const anyCtx = [...ix.uses.values()].some((u) => u.ctx);
  const anyEmb = [...ix.uses.values()].some((u) => u.emb);
  const ctxTerm = anyCtx ? termOf(`context ${shapeText(ctxShape)}`, 'ctx', 'the conditioning tokens (text)') : null;
  const tTerm = termOf('timestep t', 'emb', 'the diffusion timestep');
  const yTerm = input.y ? termOf(`y ${shapeText(input.y.shape)}`, 'emb', 'class or pooled-text conditioning') : null;
  const gap = Z.uGapX;
  const rowWidth = (paths) => paths.reduce((s, p) => s + boxes.get(p).w, 0) + gap * Math.max(0, paths.length - 1);
  const downW = down.map((r, L) => rowWidth(r) + (L === 0 ? xTerm.w + gap : 0));
  const upW = up.map((r, L) => rowWidth(r) + (L === 0 ? outTerm.w + gap : 0));
  const leftW = Math.max(0, ...downW.map((w, L) => w + L * Z.uIndent));
  const rightW = Math.max(0, ...upW.map((w, L) => w + L * Z.uIndent));
  const timeBox = header.map((p) => boxes.get(p));
  const headerW = tTerm.w + gap + timeBox.reduce((s, b) => s + b.w + 2 * gap + 2 * Z.opR, 0) + (yTerm ? yTerm.w : 0)
    + (ctxTerm ? ctxTerm.w + 4 * gap : 0);
  const midBox = mid ? boxes.get(mid) : null;
  const W = Math.ceil(2 * Z.margin + Math.max(leftW + Z.uCenterGap + rightW, headerW, midBox ? midBox.w + 200 : 0));

  const place = new Map(); // path → {box, x, y}
  const terms = [];
  const edges = [];
  const ops = [];
  const dots = [];
  const skips = [];

  // Header: t → time_embed (+ y → label_emb) and the context, far right.
  const headerTop = Z.margin;
  const headerH = Math.max(align?.headerH ?? 0, Z.top.h, ...timeBox.map((b) => b.h));
  const portY = (p) => p.y + Z.portDy;
  let hx = Z.margin;
  const tPos = { ...tTerm, x: hx, y: headerTop + Z.portDy - Z.termH / 2 };
  terms.push(tPos);
  hx += tTerm.w + gap;
  let embSource = null; // where the time-embedding signal leaves the header
  const timePath = header.find((p) => ix.blockByPath.get(p).category === 'time_embedding') ?? header[0];
  const labelPath = header.find((p) => p !== timePath);
  if (timePath) {
    const p = { box: boxes.get(timePath), x: hx, y: headerTop };
    place.set(timePath, p);
    edges.push({ pts: [[tPos.x + tPos.w, portY(p)], [p.x, portY(p)]], cls: 'emb', head: true });
    hx += p.box.w;
    embSource = { x: p.x + p.box.w / 2, y: p.y + p.box.h };
    if (labelPath) {
      const cx = hx + gap + Z.opR;
      const cy = portY(p);
      ops.push({ shape: 'circle', cx, cy, r: Z.opR, sym: '+', label: '' });
      edges.push({ pts: [[hx, cy], [cx - Z.opR, cy]], cls: 'emb', head: true });
      const lp = { box: boxes.get(labelPath), x: cx + Z.opR + gap, y: headerTop };
      place.set(labelPath, lp);
      edges.push({ pts: [[lp.x, portY(lp)], [cx + Z.opR, cy]], cls: 'emb', head: true });
      if (yTerm) {
        const yPos = { ...yTerm, x: lp.x + lp.box.w + gap, y: cy - Z.termH / 2 };
        terms.push(yPos);
        edges.push({ pts: [[yPos.x, cy], [lp.x + lp.box.w, cy]], cls: 'emb', head: true });
      }
      embSource = { x: cx, y: cy + Z.opR };
    }
  }
  let ctxPos = null;
  if (ctxTerm) {
    ctxPos = { ...ctxTerm, x: W - Z.margin - ctxTerm.w, y: headerTop + Z.portDy - Z.termH / 2 };
    terms.push(ctxPos);
  }

  // Channels above each row (index `levels` is the middle row): carriage lane, skip lanes, bus lanes.
  const skipsInto = Array.from({ length: levels + 1 }, () => []);
  const upLevel = new Map();
  up.forEach((r, L) => r.forEach((p) => upLevel.set(p, L)));
  for (const s of ix.trace.skips) if (upLevel.has(s.to)) skipsInto[upLevel.get(s.to)].push(s);
  const busLanes = (anyEmb ? 1 : 0) + (anyCtx ? 1 : 0);
  const channelH = (L) => Z.carriage + skipsInto[L].length * Z.laneH + busLanes * Z.busH + Z.channelPad;

  const rowTop = [];
  const rowBottom = [];
  const chTop = [];
  const geometry = { levels, headerH, channel: [], row: [] };
  let y = headerTop + headerH + Z.headerGap;
  for (let L = 0; L <= levels; L += 1) {
    if (L === levels) y += align?.beforeMid ?? 0; // room for levels the other model has and this one lacks
    const paths = L < levels ? [...down[L], ...up[L]] : mid ? [mid] : [];
    const hRow = Math.max(Z.top.h, ...paths.map((p) => boxes.get(p).h));
    geometry.channel[L] = channelH(L);
    geometry.row[L] = hRow;
    // Extra height goes above the channel, so the lanes stay next to the row they feed.
    chTop[L] = y + Math.max(0, (align?.channel[L] ?? 0) - channelH(L));
    rowTop[L] = chTop[L] + channelH(L);
    rowBottom[L] = rowTop[L] + Math.max(hRow, align?.row[L] ?? 0);
    y = rowBottom[L];
  }
  const H = Math.ceil(y + Z.margin);
  const carriageY = (L) => chTop[L] + Z.carriage / 2 + 1;
  const laneY = (L, k) => chTop[L] + Z.carriage + k * Z.laneH + Z.laneH - 4;
  const embY = (L) => chTop[L] + Z.carriage + skipsInto[L].length * Z.laneH + Z.busH / 2 + 2;
  const ctxY = (L) => embY(L) + (anyEmb ? Z.busH : 0);

  // Rows.
  const rowOf = new Map();
  for (let L = 0; L < levels; L += 1) {
    let x = Z.margin + L * Z.uIndent;
    if (L === 0) {
      const xPos = { ...xTerm, x, y: rowTop[0] + Z.portDy - Z.termH / 2 };
      terms.push(xPos);
      x += xTerm.w + gap;
      if (down[0].length) {
        edges.push({ pts: [[xPos.x + xPos.w, xPos.y + Z.termH / 2], [x, xPos.y + Z.termH / 2]], cls: 'flow', head: true });
      }
    }
    for (const p of down[L]) {
      const b = boxes.get(p);
      place.set(p, { box: b, x, y: rowTop[L] });
      rowOf.set(p, L);
      x += b.w + gap;
    }
    let xr = W - Z.margin - L * Z.uIndent - upW[L];
    for (const p of up[L]) {
      const b = boxes.get(p);
      place.set(p, { box: b, x: xr, y: rowTop[L] });
      rowOf.set(p, L);
      xr += b.w + gap;
    }
    if (L === 0 && outPath) {
      const op = place.get(outPath);
      const oPos = { ...outTerm, x: op.x + op.box.w + gap, y: rowTop[0] + Z.portDy - Z.termH / 2 };
      terms.push(oPos);
      edges.push({ pts: [[op.x + op.box.w, portY(op)], [oPos.x, portY(op)]], cls: 'flow', head: true });
    }
  }
  if (mid) {
    const b = boxes.get(mid);
    const lastDown = down[levels - 1].at(-1);
    const firstUp = up[levels - 1][0];
    let cx = W / 2;
    if (lastDown && firstUp) {
      const a = place.get(lastDown);
      cx = (a.x + a.box.w + place.get(firstUp).x) / 2;
    }
    const x = Math.max(Z.margin, Math.min(W - Z.margin - b.w, cx - b.w / 2));
    place.set(mid, { box: b, x, y: rowTop[levels] });
    rowOf.set(mid, levels);
  }

  // Each row's resolution, between the two arms: the U's depth is the latent getting smaller.
  const rowLabels = [];
  const sample = input.sample_size ?? input.x?.shape?.slice(2) ?? [];
  for (let L = 0; L < levels; L += 1) {
    const a = place.get(down[L].at(-1));
    const b = place.get(up[L][0]);
    const text = sample.map((v) => v / 2 ** L).join('×');
    if (!a || !b || b.x - (a.x + a.box.w) < textWidth(text, 12, true) + 16) continue;
    rowLabels.push({ x: (a.x + a.box.w + b.x) / 2, y: rowTop[L] + Z.portDy, text, sub: `level ${L}` });
  }

  // The main flow: every non-embedding block in execution order.
  const seq = ix.blocks.filter((b) => b.stage !== 'embed' && place.has(b.path)).map((b) => b.path);
  for (let i = 1; i < seq.length; i += 1) {
    const a = place.get(seq[i - 1]);
    const b = place.get(seq[i]);
    const ra = rowOf.get(seq[i - 1]);
    const rb = rowOf.get(seq[i]);
    const ay = portY(a);
    const by = portY(b);
    if (ra === rb && b.x >= a.x + a.box.w) {
      edges.push({ pts: [[a.x + a.box.w, ay], [b.x, by]], cls: 'flow', head: true });
    } else {
      // Turn to the next row through the carriage lane of the lower row's channel.
      const cy = carriageY(Math.max(ra, rb));
      const xa = a.x + a.box.w + 12;
      const xb = b.x - 14;
      edges.push({ pts: [[a.x + a.box.w, ay], [xa, ay], [xa, cy], [xb, cy], [xb, by], [b.x, by]], cls: 'flow', head: true });
    }
  }

  // Skip connections: lanes nest, the widest span on top, so lines never cross each other.
  for (let L = 0; L < levels; L += 1) {
    const list = skipsInto[L]
      .filter((s) => place.has(s.from) && place.has(s.to))
      .map((s) => {
        const a = place.get(s.from);
        const b = place.get(s.to);
        return { s, a, b, sx: a.x + a.box.w / 2, tx: b.x + b.box.w / 2 };
      })
      .sort((p, q) => Math.abs(q.tx - q.sx) - Math.abs(p.tx - p.sx));
    list.forEach(({ s, a, b, sx, tx }, k) => {
      const ly = laneY(L, k);
      const sameRow = rowOf.get(s.from) === L;
      const sy = sameRow ? a.y : a.y + a.box.h;
      skips.push({
        from: s.from,
        to: s.to,
        pts: [[sx, sy], [sx, ly], [tx, ly], [tx, b.y]],
        label: shapeText(s.shape),
        lx: (sx + tx) / 2,
        ly: ly - 3,
        title: `skip ${s.from} → ${s.to}: ${shapeText(s.shape)}, concatenated to ${shapeText(s.concat_shape)}`,
      });
    });
  }

  // Buses: a trunk down the left margin (time embedding) and the right margin (context), a branch along each
  // row, and a drop into each block that uses the signal.
  const buses = [];
  const rowsWith = (key) => {
    const out = [];
    for (let L = 0; L <= levels; L += 1) {
      const paths = L < levels ? [...down[L], ...up[L]] : mid ? [mid] : [];
      const users = paths.filter((p) => ix.uses.get(p)?.[key]);
      if (users.length) out.push({ L, users });
    }
    return out;
  };
  if (anyEmb && embSource) {
    const trunkX = Z.margin - 20;
    const rows = rowsWith('emb');
    const y0 = embY(0);
    buses.push({ pts: [[embSource.x, embSource.y], [embSource.x, y0]], cls: 'emb', head: false });
    if (rows.length) {
      const lastY = embY(rows.at(-1).L);
      buses.push({ pts: [[trunkX, y0], [trunkX, lastY]], cls: 'emb', head: false });
      for (const { L, users } of rows) {
        const by = embY(L);
        const xs = users.map((p) => place.get(p).x + 14);
        buses.push({ pts: [[trunkX, by], [Math.max(...xs, L === 0 ? embSource.x : 0), by]], cls: 'emb', head: false });
        for (const p of users) {
          const q = place.get(p);
          buses.push({ pts: [[q.x + 14, by], [q.x + 14, q.y]], cls: 'emb', head: true });
          dots.push({ cx: q.x + 14, cy: by, cls: 'emb' });
        }
      }
    }
  }
  if (anyCtx && ctxPos) {
    const trunkX = W - Z.margin + 20;
    const rows = rowsWith('ctx');
    const cy0 = ctxPos.y + Z.termH / 2;
    if (rows.length) {
      buses.push({ pts: [[ctxPos.x + ctxPos.w, cy0], [trunkX, cy0], [trunkX, ctxY(rows.at(-1).L)]], cls: 'ctx', head: false });
      for (const { L, users } of rows) {
        const by = ctxY(L);
        const xs = users.map((p) => place.get(p).x + 26);
        buses.push({ pts: [[trunkX, by], [Math.min(...xs), by]], cls: 'ctx', head: false });
        for (const p of users) {
          const q = place.get(p);
          buses.push({ pts: [[q.x + 26, by], [q.x + 26, q.y]], cls: 'ctx', head: true });
          dots.push({ cx: q.x + 26, cy: by, cls: 'ctx' });
        }
      }
    }
  }

  const tops = ix.blocks.filter((b) => place.has(b.path)).map((b) => ({ ...place.get(b.path), stage: b.stage }));
  return { w: W, h: H, tops, terms, edges, ops, dots, skips, buses, rowLabels, geometry };
}

/**
 * Row heights that make two scenes line up: level L beside level L, the middle row beside the middle row, and a
 * gap in the shallower U where the deeper one has levels it lacks. Takes both scenes' `geometry`, returns one
 * `align` argument for layoutScene per scene.
 */
export function alignScenes(ga, gb) {
  const deepest = Math.max(ga.levels, gb.levels);
  const channel = [];
  const row = [];
  for (let L = 0; L < deepest; L += 1) {
    channel[L] = Math.max(L < ga.levels ? ga.channel[L] : 0, L < gb.levels ? gb.channel[L] : 0);
    row[L] = Math.max(L < ga.levels ? ga.row[L] : 0, L < gb.levels ? gb.row[L] : 0);
  }
  const midChannel = Math.max(ga.channel[ga.levels], gb.channel[gb.levels]);
  const midRow = Math.max(ga.row[ga.levels], gb.row[gb.levels]);
  const headerH = Math.max(ga.headerH, gb.headerH);
  const forOne = (g) => {
    let beforeMid = 0;
    for (let L = g.levels; L < deepest; L += 1) beforeMid += channel[L] + row[L];
    return {
      headerH,
      beforeMid,
      channel: [...channel.slice(0, g.levels), midChannel],
      row: [...row.slice(0, g.levels), midRow],
    };
  };
  return [forOne(ga), forOne(gb)];
}

// ---------------------------------------------------------------------------------------------------------------
// Overlays, search and positions: small pure helpers for the "Colour by" fill, the search box and scrolling.

/** Every leaf output inside a module, summed (cached per trace): a container's own output would hide what runs
 * inside it; the root's sum equals the trace's totals.activation_bytes. */
function leafActivation(ix, path) {
  if (!ix.leafBytes) {
    const sums = new Map();
    const nodes = ix.trace.nodes;
    for (let i = nodes.length - 1; i >= 0; i -= 1) {
      const n = nodes[i];
      sums.set(n.path, n.children.length ? n.children.reduce((s, c) => s + (sums.get(c) ?? 0), 0) : n.activation_bytes ?? 0);
    }
    ix.leafBytes = sums;
  }
  return ix.leafBytes.get(path) ?? null;
}

/** A module's number for a "Colour by" overlay (config.OVERLAYS), or null when the trace has none. */
export function overlayValue(ix, node, key) {
  if (key === 'params') return node.params ?? null;
  if (key === 'flops') return node.flops ?? null;
  if (key === 'attention') return node.flops_by_op?.attention ?? 0;
  if (key === 'activation') return leafActivation(ix, node.path);
  if (key === 'time') return node.time_ms ?? null;
  return null;
}

/** The overlay's scale: the largest top-level block gets the darkest colour; everything smaller is placed on a
 * square-root scale, so modules a hundred times smaller still show a tint. */
export function overlayScale(ix, key) {
  let max = 0;
  for (const b of ix.blocks) {
    const n = ix.nodes.get(b.path);
    if (n) max = Math.max(max, overlayValue(ix, n, key) ?? 0);
  }
  return {
    key,
    max,
    /** Position on the ramp, 0..1, or null (no value). */
    at: (v) => (v == null ? null : max > 0 ? Math.min(1, Math.sqrt(Math.max(0, v) / max)) : 0),
    /** The value at ramp position t (for the legend's ticks). */
    valueAt: (t) => t * t * max,
  };
}

/** The open blocks that show `path` in the diagram, outermost first. A dissolved container (drawn as a bracket)
 * opens its parent. Empty for a top-level block or a module that is never drawn. */
export function pathToOpen(ix, path) {
  const top = ix.nodes.get(path)?.block;
  if (!top || !ix.blockByPath.has(top) || ix.order.get(path) === Infinity) return [];
  const out = [];
  let cur = top;
  while (cur !== path) {
    const { boxPaths } = flowOf(ix, cur);
    const next = boxPaths.find((p) => path === p || path.startsWith(`${p}.`));
    if (boxPaths.length) out.push(cur);
    if (!next) break;
    cur = next;
  }
  return out;
}

/** Where `path` (or its nearest drawn ancestor) sits in a scene, in scene units: {x, y, w, h, path}. */
export function boxRect(scene, path) {
  const within = (p) => path === p || path.startsWith(`${p}.`);
  const pl = scene.tops.find((t) => within(t.box.path));
  if (!pl) return null;
  let { box, x, y } = pl;
  while (box.path !== path && box.inner) {
    const next = box.inner.placements.find((p) => path === p.box.path || path.startsWith(`${p.box.path}.`));
    if (!next) break;
    x += Z.padX + next.x;
    y += box.cardH + next.y;
    box = next.box;
  }
  return { x, y, w: box.w, h: box.h, path: box.path };
}
