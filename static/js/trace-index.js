// trace-index.js — lookups built once per trace (nodes by path, execution order, who reads the time embedding or
// the context, totals) and the numbers a card or a "Colour by" fill shows. Pure: no DOM, no globals.

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
