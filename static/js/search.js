// search.js — the "Search" box: finds modules by path, kind or output shape, and steps through the hits.
// findModules() is pure (trace index + text → paths); createSearch() owns the box, the count and the ‹ › buttons,
// and hands the hits to its owner, who opens the diagram down to them, marks them and shows the current one.

/** "1280x8x8", "1280 × 8 × 8", "1280*8*8" → "1280×8×8"; everything lower case. */
export function normalizeQuery(text) {
  return String(text ?? '')
    .trim()
    .toLowerCase()
    .replace(/(\d)\s*[x×*,]\s*(?=\d)/g, '$1×')
    .replace(/^\[|\]$/g, '');
}

const SHAPE = /^\d+(×\d+)+$/;

/**
 * Paths of the modules that match `query`, in the trace's order (parents before children):
 * - a shape ("1280×8×8", with or without the batch) matches modules whose output has that shape;
 * - otherwise a module matches when its kind or category contains the text ("CrossAttention", "cross_attention"),
 *   or its path does and its parent's does not ("attn2" finds each attn2, not also its to_q, to_k, ...).
 * Only modules the diagram can draw count: the root, bare lists and modules that never ran are left out.
 */
export function findModules(ix, query) {
  const q = normalizeQuery(query);
  if (!q) return [];
  const drawable = (n) => {
    return Boolean(n.block && ix.blockByPath.has(n.block) && ix.order.get(n.path) !== Infinity);
  };
  const hits = [];
  if (SHAPE.test(q)) {
    for (const n of ix.trace.nodes) {
      if (!drawable(n)) continue;
      const shapes = (n.outputs ?? []).flatMap((t) => [t.shape.join('×'), t.shape.slice(1).join('×')]);
      if (shapes.includes(q)) hits.push(n.path);
    }
    return hits;
  }
  for (const n of ix.trace.nodes) {
    if (!drawable(n)) continue;
    const path = n.path.toLowerCase();
    const parent = (n.parent ?? '').toLowerCase();
    const parentDrawn = n.parent != null && ix.blockByPath.has(ix.nodes.get(n.parent)?.block ?? '');
    const byPath = path.includes(q) && !(parent.includes(q) && parentDrawn);
    const byKind = n.kind.toLowerCase().includes(q) || n.category.includes(q);
    if (byPath || byKind) hits.push(n.path);
  }
  return hits;
}

/**
 * The search box. elements: {input, prev, next, count}; hooks: {getIndex() → the trace index or null,
 * onHits(paths) when the hits change, onCurrent(path, i) when the current hit moves}.
 * Enter: next hit (Shift+Enter: previous); Escape clears.
 */
export function createSearch({ input, prev, next, count }, { getIndex, onHits, onCurrent }) {
  let query = '';
  let hits = [];
  let current = -1;
  let timer = null;

  function showCount() {
    count.dataset.hits = String(hits.length);
    if (!query) count.textContent = '';
    else if (!hits.length) count.textContent = 'no match';
    else count.textContent = `${current + 1} / ${hits.length}`;
    prev.disabled = hits.length < 2;
    next.disabled = hits.length < 2;
  }

  function go(i) {
    if (!hits.length) return;
    current = (i + hits.length) % hits.length;
    showCount();
    onCurrent(hits[current], current);
  }

  /** Search again for what is in the box (also after a new model is drawn). */
  function run() {
    clearTimeout(timer);
    timer = null;
    const ix = getIndex();
    query = normalizeQuery(input.value);
    hits = ix && query ? findModules(ix, query) : [];
    current = -1;
    onHits(hits);
    if (hits.length) go(0);
    else showCount();
  }

  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(run, 180);
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      if (timer || normalizeQuery(input.value) !== query) run();
      else go(current + (event.shiftKey ? -1 : 1));
    } else if (event.key === 'Escape') {
      input.value = '';
      run();
    }
  });
  prev.addEventListener('click', () => go(current - 1));
  next.addEventListener('click', () => go(current + 1));
  showCount();

  return {
    run,
    get hits() {
      return hits;
    },
    get query() {
      return query;
    },
  };
}
