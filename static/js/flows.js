// flows.js — what an opened block shows: its children in execution order, with the operations the forward performs
// between them (residual adds, the time embedding, reshapes, attention), as a list of steps. No geometry. Pure.
// A generic reader of the trace: what a block does is its class's flow (`Node.flow`, stated beside the forward in
// sdunet_core/model); a module without one shows its children in the order they ran. No block class is named here.

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

/** How each step of the trace's flow vocabulary (`FlowStep.op`, docs/trace-schema.md "Flow steps") is drawn: an
 * operator on the data path, a pill, or a note; `op` names it in the step's id. What the step says comes from the
 * trace (`text`), never from here. A `module` step is a box. */
export const FLOW_ITEMS = Object.freeze({
  residual_add: { t: 'op', sym: '+', op: 'residual' },
  add: { t: 'op', sym: '+', op: 'add' },
  add_embedding: { t: 'op', sym: '+', op: 'add_emb' },
  scale_shift: { t: 'op', sym: '×', op: 'scale_shift' },
  concat: { t: 'op', sym: '⧺', op: 'concat' },
  attention: { t: 'pill', op: 'attend' },
  gate: { t: 'pill', op: 'gate' },
  interpolate: { t: 'pill', op: 'nearest' },
  to_tokens: { t: 'note' },
  to_map: { t: 'note' },
  sinusoid: { t: 'note' },
});

/** A module's own inputs besides the running tensor, as a flow names them, and how the page marks them. */
const FEEDS = {
  emb: { feed: 'emb', feedText: 'time embedding', term: 'time emb' },
  context: { feed: 'ctx', feedText: 'context', term: 'context' },
};

/** The drawn item of one non-module step. */
function opItem(node, s) {
  const look = FLOW_ITEMS[s.op] ?? { t: 'note' };
  const text = s.op === 'attention' ? `${s.text ?? ''}${headsOf(node)}` : s.text ?? s.op;
  return look.t === 'op' ? { ...look, label: text } : { ...look, text };
}

/** Items, residuals and brackets of a module whose class states its flow (`node.flow`), read generically:
 * a module step is a box (a side box when it only projects the time embedding or the context for an operation;
 * a lane box when it only carries a residual's value; one of a parallel group when several feed one attention
 * step); every other step is drawn as FLOW_ITEMS says; a residual add spans from the first step that reads the
 * value it carries. */
function readFlow(ix, path, node) {
  const prefix = path ? `${path}.` : '';
  // A module step whose child never ran in this forward is left out (e.g. a resampler that is the identity).
  const steps = node.flow.filter((s) => s.op !== 'module' || ix.order.has(prefix + s.module) && ix.order.get(prefix + s.module) !== Infinity);
  const made = new Map(steps.map((s) => [s.out, s]));
  const readers = (value) => steps.filter((s) => s.inputs.includes(value));
  const isModule = (s) => s?.op === 'module';
  const hidden = new Set(); // module steps drawn beside the main column
  const grouped = new Map(); // first module step of a parallel group → the group's item
  for (const s of steps) {
    if (s.op !== 'attention' || s.inputs.length < 2) continue;
    const members = s.inputs.map((v) => made.get(v));
    if (!members.every((m) => isModule(m) && !hidden.has(m))) continue;
    const item = {
      t: 'par',
      members: members.map((m) => ({ path: prefix + m.module, feed: m.inputs.includes('context') ? 'ctx' : 'x' })),
    };
    members.forEach((m, i) => (i ? hidden.add(m) : grouped.set(m, item)));
  }
  const sideOf = new Map(); // operation step → its side box
  for (const s of steps) {
    if (!isModule(s) || hidden.has(s) || grouped.has(s) || !s.inputs.every((v) => v in FEEDS)) continue;
    const users = readers(s.out);
    if (users.length === 1 && !isModule(users[0])) {
      sideOf.set(users[0], { t: 'box', path: prefix + s.module, feed: FEEDS[s.inputs[0]].feed, feedText: FEEDS[s.inputs[0]].feedText });
      hidden.add(s);
    }
  }
  const lanes = new Map(); // residual step → {carried value, module steps on its lane}
  for (const s of steps) {
    if (s.op !== 'residual_add') continue;
    let value = s.inputs[0];
    let reader = s;
    const via = [];
    // Modules that only carry the residual's value (the skip connection, a resampled copy of x) ride its lane.
    while (isModule(made.get(value)) && readers(value).length === 1 && readers(value)[0] === reader) {
      reader = made.get(value);
      via.unshift(reader);
      hidden.add(reader);
      value = reader.inputs[0];
    }
    lanes.set(s, { value, via });
  }
  const itemOf = new Map();
  const items = [];
  for (const s of steps) {
    if (hidden.has(s)) continue;
    let item = grouped.get(s);
    if (!item && isModule(s)) {
      item = { t: 'box', path: prefix + s.module };
      const feed = s.inputs.slice(1).find((v) => v in FEEDS);
      if (feed) item.side = { t: 'term', text: FEEDS[feed].term, cls: FEEDS[feed].feed };
    } else if (!item) {
      item = opItem(node, s);
      if (sideOf.has(s)) item.side = sideOf.get(s);
    }
    itemOf.set(s, item);
    items.push(item);
  }
  const last = items[items.length - 1];
  if (last && (last.t === 'pill' || last.t === 'note')) last.out = node.outputs?.[0]?.shape; // the module's output
  const residuals = [];
  for (const [s, lane] of lanes) {
    const first = steps.find((r) => itemOf.has(r) && r.inputs.includes(lane.value));
    residuals.push({ from: itemOf.get(first) ?? items[0], to: itemOf.get(s), via: lane.via.map((m) => prefix + m.module) });
  }
  // Containers between this module and the children its flow names (a ModuleList, a Sequential walked by hand)
  // are drawn as brackets around their members, innermost first.
  const ran = steps.filter(isModule).map((s) => prefix + s.module).sort((a, b) => ix.order.get(a) - ix.order.get(b));
  const containers = new Set();
  for (const p of ran) {
    const parts = p.slice(prefix.length).split('.');
    for (let k = parts.length - 1; k > 0; k -= 1) {
      const c = prefix + parts.slice(0, k).join('.');
      if (ix.nodes.has(c)) containers.add(c);
    }
  }
  const depth = (p) => p.split('.').length;
  const brackets = [...containers]
    .map((c) => ({ path: c, members: ran.filter((p) => p.startsWith(`${c}.`)) }))
    .sort((a, b) => ix.order.get(a.members[0]) - ix.order.get(b.members[0]) || depth(b.path) - depth(a.path));
  return { items, residuals, brackets };
}

/** The shape of a value the model's own flow names: a module's output, or one of the model's inputs. */
function shapeOfValue(ix, value) {
  return ix.nodes.get(value)?.outputs?.[0]?.shape ?? ix.trace.input?.[value]?.shape ?? null;
}

/** A top-level block whose input the model makes with an operation of its own (the sinusoid before the time
 * embedding, the concatenation of a skip before an up block): that step, first, from the model's flow, with the
 * shape of what it reads (the running tensor before the concat: the previous block's output, from the trace). */
function leadIn(ix, path) {
  const root = ix.nodes.get('');
  if (!root?.flow || !ix.blockByPath.has(path)) return null;
  const own = root.flow.find((s) => s.op === 'module' && s.module === path);
  const step = own && root.flow.find((s) => s.out === own.inputs[0] && s.op !== 'module');
  // Only a step made for this block alone (the ControlNet's hint, added once, feeds two blocks: drawn in neither).
  if (!step || root.flow.filter((s) => s.inputs.includes(step.out)).length !== 1) return null;
  const item = opItem(root, step);
  const skip = ix.skipInto.get(path);
  if (step.op === 'concat' && skip) {
    item.out = skip.concat_shape;
    item.side = { t: 'term', text: `skip ${shapeText(skip.shape)}`, cls: 'skip', title: `from ${skip.from}` };
  }
  return { item, inShape: shapeOfValue(ix, step.inputs[0]) };
}

/** Items and brackets of a module without a flow of its own (a Sequential, a torch layer): its children in
 * execution order, each with the side input it reads. */
function readChildren(ix, path) {
  const brackets = [];
  const items = flatten(ix, path, brackets).map((p) => ({ t: 'box', path: p }));
  for (const it of items) {
    const n = ix.nodes.get(it.path);
    // Only where the signal is an extra input: inside emb_layers the embedding is the running tensor itself.
    const extra = (n.inputs?.length ?? 0) > 1;
    if (n.takes_emb && extra) it.side = { t: 'term', text: FEEDS.emb.term, cls: FEEDS.emb.feed };
    else if (n.takes_context && extra) it.side = { t: 'term', text: FEEDS.context.term, cls: FEEDS.context.feed };
  }
  return { items, residuals: [], brackets };
}

/** The flow of an opened block: steps, residual connections and brackets (no geometry). Cached per path. */
export function flowOf(ix, path) {
  const cached = ix.flows.get(path);
  if (cached) return cached;
  const node = ix.nodes.get(path);
  // The model's own flow is drawn as the U (u-geometry.js); here it only leads into its blocks (leadIn).
  const read = !node.children.length
    ? { items: [], residuals: [], brackets: [] }
    : node.flow && path !== ''
      ? readFlow(ix, path, node)
      : readChildren(ix, path);
  const { items, residuals, brackets } = read;
  let inShape = node.inputs?.[0]?.shape ?? null;
  const lead = items.length ? leadIn(ix, path) : null;
  if (lead) {
    items.unshift(lead.item);
    inShape = lead.inShape ?? inShape;
  }
  // Every step has an id for the edges that name it: a module path, or the block's path plus its operation
  // (":residual", ":add_emb", ":concat", ":attend", ":nearest", ":gate"; a second one of a kind gets a number,
  // ":residual2"). Every pill names its operation: a default would call the Upsample's nearest step ":attend".
  const seen = new Map();
  for (const it of items) {
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
  for (const it of items) {
    if (it.t === 'box') boxPaths.push(it.path);
    if (it.t === 'par') for (const m of it.members) boxPaths.push(m.path);
    if (it.side?.t === 'box') boxPaths.push(it.side.path);
  }
  for (const r of residuals) boxPaths.push(...r.via);
  const flow = { items, residuals, brackets, boxPaths, inShape };
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
