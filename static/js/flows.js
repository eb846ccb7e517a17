// flows.js — what an opened block shows: its children in execution order, with the operations the forward performs
// between them (residual adds, the time embedding, reshapes, attention), as a list of steps. No geometry. Pure.

import { shapeText } from './format.js';


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
        op = { t: 'op', sym: '×', label: 'norm(h)·(1+scale)+shift', side, op: 'scale_shift' };
        if (at >= 0 && h.rel(at) === 'out_layers.0') at += 1;
      } else {
        op = { t: 'op', sym: '+', label: 'add time embedding', side, op: 'add_emb' };
      }
      h.insert(at >= 0 ? at : h.items.length, op);
    }
    const first = h.items[0];
    const plus = { t: 'op', sym: '+', label: 'residual add', op: 'residual' };
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
    const plus = { t: 'op', sym: '+', label: 'residual add', op: 'residual' };
    h.items.push(plus);
    if (first) h.residual(first, plus, []);
  },

  transformer_block(h) {
    for (const [norm, step] of [['norm1', 'attn1'], ['norm2', 'attn2'], ['norm3', 'ff']]) {
      const n = h.idx(norm);
      const i = h.idx(step);
      if (i < 0) continue;
      const plus = { t: 'op', sym: '+', label: 'residual add', op: 'residual' };
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
    const attend = { t: 'pill', text: `softmax(QKᵀ/√d)·V${headsOf(h.node)}`, op: 'attend' };
    h.items.unshift(par, attend);
  },

  attention_block(h) {
    h.insert(0, { t: 'note', text: 'flatten: B×C×H×W → B×C×(H·W)' });
    const qkv = h.idx('qkv');
    h.insert(qkv >= 0 ? qkv + 1 : h.items.length, {
      t: 'pill',
      text: `split q, k, v · softmax(QKᵀ/√d)·V${headsOf(h.node)}`,
      op: 'attend',
    });
    h.items.push({ t: 'note', text: 'back to a map: B×C×H×W', out: h.node.outputs?.[0]?.shape });
    const plus = { t: 'op', sym: '+', label: 'residual add', op: 'residual' };
    h.items.push(plus);
    h.residual(h.items[0], plus, []);
  },

  geglu(h) {
    h.items.push({ t: 'pill', text: 'halves: value · GELU(gate)', out: h.node.outputs?.[0]?.shape, op: 'gate' });
  },

  upsample(h) {
    const conv = h.idx('conv');
    h.insert(conv >= 0 ? conv : h.items.length, { t: 'pill', text: 'nearest-neighbour ×2', op: 'nearest' });
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
      op: 'concat',
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
    // Only where the signal is an extra input: inside emb_layers the embedding is the running tensor itself.
    const extra = (n.inputs?.length ?? 0) > 1;
    if (n.takes_emb && extra) it.side = { t: 'term', text: 'time emb', cls: 'emb' };
    else if (n.takes_context && extra) it.side = { t: 'term', text: 'context', cls: 'ctx' };
  }
  // Every step has an id for the edges that name it: a module path, or the block's path plus its operation
  // (":residual", ":add_emb", ":concat", ":attend", ":nearest", ":gate"; a second one of a kind gets a number,
  // ":residual2"). Every pill names its operation: a default would call the Upsample's nearest step ":attend".
  const seen = new Map();
  for (const it of h.items) {
    if (it.t === 'box') {
      it.id = it.path;
    } else if (it.t !== 'par') {
      const op = it.op ?? 'reshape';
      const n = (seen.get(op) ?? 0) + 1;
      seen.set(op, n);
      it.id = `${path}:${op}${n > 1 ? n : ''}`;
    }
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
