// diagram.js — draws a scene from layout.js as SVG and turns clicks and keys on it into intents (open, select).
// Every drawn module is a <g class="box" data-path data-kind data-expanded>, nested inside the block that contains
// it; its card is the focusable button (named by its visible text; aria-expanded when it can open), so that an
// opened block's children are not nested inside another button. The box is
// inside the block that contains it. Groups are kept by path between renders: a subtree whose layout object did
// not change is not touched, so opening one block costs only its ancestors. Past CULL_MIN boxes (SDXL fully
// opened) the insides of opened blocks far from the visible area are left out until scrolled to: the DOM stays
// small and every interaction fast. All text goes in via textContent.

import { SIZES as Z, CATEGORY_CLASS, OVERLAY_DARK_FROM, rampColor } from './config.js';
import { barFraction, cardLines, metricOf, overlayScale, overlayValue } from './layout.js';
import { ms, percent } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
// "Colour by" quantities a card's figure can show; the others leave the "Cards show" choice.
const CARD_METRIC = { flops: 'flops', params: 'params', time: 'time' };
const MARKERS = ['flow', 'skip', 'emb', 'ctx', 'res'];
// Past this many boxes, only what is near the visible area gets its inside drawn (SDXL fully open has ~2000).
const CULL_MIN = 700;
// Each diagram after the first (the compare view draws two more) gets its own marker ids.
let instances = 0;

function el(tag, attrs = {}, text = null) {
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
function placeAt(parent, child, index) {
  const current = parent.childNodes[index];
  if (current !== child) parent.insertBefore(child, current ?? null);
}

export function createDiagram(host, { onActivate, onSelect, label = 'UNet diagram: click a block to open it' }) {
  const ids = instances ? `-${instances}` : '';
  instances += 1;
  const svg = el('svg', { class: 'unet', role: 'group', 'aria-label': label });
  const defs = el('defs');
  for (const m of MARKERS) {
    const marker = el('marker', {
      id: `arrow-${m}${ids}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
      orient: 'auto-start-reverse', class: `marker ${m}`,
    });
    marker.append(el('path', { d: 'M0 1L10 5L0 9z' }));
    defs.append(marker);
  }
  const wires = el('g', { class: 'layer-wires' });
  const skipsLayer = el('g', { class: 'layer-skips' });
  const topLayer = el('g', { class: 'layer-top' });
  const boxesLayer = el('g', { class: 'layer-boxes' });
  svg.append(defs, wires, skipsLayer, topLayer, boxesLayer);
  host.append(svg);

  let ix = null;
  let metric = 'flops';
  let scene = null;
  let zoom = 1;
  let groups = new Map(); // top-level path → <g>
  let selection = null;
  let selected = null; // the <g> that carries .selected
  let win = null; // the drawn window when culling, else null
  let overlay = 'none'; // the "Colour by" key, and its scale for this trace
  let scale = null;
  let painter = null; // a card painter beside the overlay scale (community.js: block weights, a LoRA), or null
  let highlights = new Set(); // search hits: data-highlight="true"
  let fullDraw = false; // an export wants every box, culling or not

  function drawCard(g, box, depth) {
    const node = box.node;
    const lines = cardLines(ix, node);
    // The card element lives as long as its box, so that the keyboard focus on it survives a redraw.
    let card = g.__card;
    if (card) {
      card.replaceChildren();
      card.setAttribute('class', 'card');
    } else {
      card = el('g', { class: 'card', role: 'button', tabindex: 0 });
    }
    card.setAttribute('data-path', node.path);
    if (box.expandable) card.setAttribute('aria-expanded', box.expanded ? 'true' : 'false');
    else card.removeAttribute('aria-expanded');
    const w = box.w;
    const h = box.cardH;
    const top = box.top;
    const bg = el('rect', { class: 'card-bg', width: w, height: h, rx: top ? 8 : 6 });
    card.append(bg);
    const paint = painter ? painter(node) : null;
    const t = !painter && scale ? scale.at(overlayValue(ix, node, overlay)) : null;
    if (paint) {
      bg.style.fill = paint.fill;
      card.classList.add('overlaid');
      if (paint.dark) card.classList.add('on-dark');
    } else if (t != null) {
      // Inline, so it wins over the kind colours and travels with an exported SVG.
      bg.style.fill = rampColor(t);
      card.classList.add('overlaid');
      if (t >= OVERLAY_DARK_FROM) card.classList.add('on-dark');
    }
    if (top) card.append(el('rect', { class: 'stage-strip', width: 5, height: h, rx: 2 }));
    const frac = barFraction(ix, node, metric);
    // The bar keeps the closed card's length when the block opens, so bars stay comparable.
    const barW = box.cardW - 20;
    const barY = h - (top ? 5 : 7);
    if (top) card.append(el('rect', { class: 'bar-bg', x: 10, y: barY, width: barW, height: 3, rx: 1.5 }));
    if (frac > 0) card.append(el('rect', { class: 'bar', x: 10, y: barY, width: Math.max(1.5, frac * barW), height: 3, rx: 1.5 }));
    // Top cards: path, make-up, key fact, shape; inner cards: name, kind with settings, shape.
    const ys = top ? [15, 28, 40, 52] : [15, 28, 40];
    const x0 = top ? 10 : 11;
    card.append(el('text', { class: 't1', x: x0, y: ys[0] }, lines.title));
    if (lines.title !== node.path && lines.title !== node.name) g.setAttribute('aria-label', `${lines.title} ${node.path} ${node.kind}`);
    card.append(el('text', { class: 't2', x: x0, y: ys[1] }, lines.sub));
    if (top) card.append(el('text', { class: 't2 fact', x: x0, y: ys[2] }, lines.fact));
    const shapeY = ys.at(-1);
    card.append(el('text', { class: 't3', x: x0, y: shapeY }, lines.shape));
    // The card's figure is the "Colour by" quantity when that is one (else the "Cards show" one): FLOPs and params
    // as a share of the model, measured time in milliseconds. Element-wise ops have no FLOPs counted: "—".
    const m = CARD_METRIC[overlay] ?? metric;
    const { value, share } = metricOf(ix, node, m);
    let figure = m === 'time' ? (value != null ? ms(value) : null) : share != null ? percent(share) : null;
    if (m === 'flops' && value === 0 && !node.children.length) figure = '—';
    if (painter) figure = paint?.badge ?? null; // the painted number (a weight, a rank) instead of the share
    if (figure) card.append(el('text', { class: 'share', x: box.cardW - 8, y: shapeY, 'text-anchor': 'end' }, figure));
    if (box.expandable) {
      card.append(el('text', { class: 'chev', x: w - 8, y: top ? ys[1] : ys[0], 'text-anchor': 'end' }, box.expanded ? '−' : '+'));
    }
    if (top) {
      // A tooltip on the big blocks only (thousands of <title>s would slow a fully opened SDXL down). It is also
      // the card's accessible name, so it starts with what the card shows.
      const seen = [lines.title, lines.sub, lines.fact, lines.shape, figure].filter(Boolean).join(', ');
      const tip = `${seen} (${node.kind})${box.expandable ? (box.expanded ? ' — click to close' : ' — click to open') : ''}`;
      card.append(el('title', {}, tip));
    }
    // After the frame (so the frame stays behind it), before the inner flow.
    if (card.parentNode !== g || card.previousSibling !== (g.__frame ?? null)) {
      g.insertBefore(card, g.__frame ? g.__frame.nextSibling : g.firstChild);
    }
    g.__card = card;
    g.setAttribute('data-depth', depth);
  }

  function drawDeco(inner, layout) {
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

  /** Is a box at absolute (ax, ay) inside the window that is drawn? Without a window, everything is. */
  function inWindow(ax, ay, w, h) {
    return !win || (ax < win.x1 && ax + w > win.x0 && ay < win.y1 && ay + h > win.y0);
  }

  /** Create or update the group of one box at absolute (ax, ay); returns it. A box whose layout object did not
   * change keeps its card and flow drawing; only its children are visited (for culling). An opened box outside
   * the window keeps its frame and card but not its inside, which is drawn again when it scrolls into view. */
  function renderBox(box, g, depth, ax, ay) {
    if (!g) {
      g = el('g');
      g.__kids = new Map();
    }
    const node = box.node;
    const same = g.__box === box && g.__metric === metric && g.__overlay === scale && g.__paint === painter;
    if (!same) {
      const cat = CATEGORY_CLASS[node.category] ?? (node.children.length ? 'container' : 'other');
      g.setAttribute('class', `box ${box.top ? 'top' : 'inner'} cat-${cat}${box.expanded ? ' open' : ''}`);
      g.setAttribute('data-path', node.path);
      g.setAttribute('data-kind', node.kind);
      g.setAttribute('data-stage', node.stage ?? '');
      if (box.expandable) g.setAttribute('data-expanded', box.expanded ? 'true' : 'false');
      else g.removeAttribute('data-expanded');
      if (box.expanded) {
        if (!g.__frame) {
          g.__frame = el('rect', { class: 'frame', rx: box.top ? 9 : 7 });
          g.insertBefore(g.__frame, g.firstChild);
        }
        g.__frame.setAttribute('width', box.w);
        g.__frame.setAttribute('height', box.h);
      } else if (g.__frame) {
        g.__frame.remove();
        g.__frame = null;
      }
      drawCard(g, box, depth);
    }
    const isSelected = node.path === selection;
    if (isSelected !== g.classList.contains('selected')) g.classList.toggle('selected', isSelected);
    const hit = highlights.has(node.path);
    if (hit !== g.hasAttribute('data-highlight')) {
      if (hit) g.setAttribute('data-highlight', 'true');
      else g.removeAttribute('data-highlight');
    }

    if (box.expanded && inWindow(ax, ay, box.w, box.h)) {
      let inner = g.__inner;
      if (!inner) {
        inner = el('g', { class: 'inner', transform: `translate(${Z.padX},${box.cardH})` });
        g.append(inner);
        g.__inner = inner;
      }
      if (g.__layout !== box.inner) {
        inner.setAttribute('transform', `translate(${Z.padX},${box.cardH})`);
        drawDeco(inner, box.inner);
      }
      const next = new Map();
      const ox = ax + Z.padX;
      const oy = ay + box.cardH;
      box.inner.placements.forEach((pl, k) => {
        const child = renderBox(pl.box, g.__kids.get(pl.box.path), depth + 1, ox + pl.x, oy + pl.y);
        const t = `translate(${pl.x},${pl.y})`;
        if (child.__t !== t) {
          child.setAttribute('transform', t);
          child.__t = t;
        }
        placeAt(inner, child, k + 1);
        next.set(pl.box.path, child);
      });
      for (const [p, child] of g.__kids) if (!next.has(p)) child.remove();
      g.__kids = next;
      g.__layout = box.inner;
    } else if (g.__inner) {
      g.__inner.remove();
      g.__inner = null;
      g.__kids = new Map();
      g.__layout = null;
    }
    g.__box = box;
    g.__metric = metric;
    g.__overlay = scale;
    g.__paint = painter;
    return g;
  }

  function drawWires(sc) {
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

  function applySize() {
    if (!scene) return;
    svg.setAttribute('viewBox', `0 0 ${scene.w} ${scene.h}`);
    svg.setAttribute('width', Math.round(scene.w * zoom));
    svg.setAttribute('height', Math.round(scene.h * zoom));
  }

  /** The part of the scene drawn in full: the visible area plus one screen around it, in scene units. Only for
   * big scenes: below CULL_MIN boxes everything is drawn (and every module is in the DOM). */
  function computeWindow(sc) {
    const total = sc.tops.reduce((n, t) => n + t.box.count, 0);
    if (total <= CULL_MIN || fullDraw) return null;
    const w = host.clientWidth / zoom;
    const h = host.clientHeight / zoom;
    const x = host.scrollLeft / zoom;
    const y = host.scrollTop / zoom;
    return { x0: x - w, y0: y - h, x1: x + 2 * w, y1: y + 2 * h };
  }

  function renderBoxes() {
    win = computeWindow(scene);
    const next = new Map();
    scene.tops.forEach((pl, k) => {
      const g = renderBox(pl.box, groups.get(pl.box.path), 0, pl.x, pl.y);
      const t = `translate(${pl.x},${pl.y})`;
      if (g.__t !== t) {
        g.setAttribute('transform', t);
        g.__t = t;
      }
      g.setAttribute('data-stage', pl.stage);
      placeAt(boxesLayer, g, k);
      next.set(pl.box.path, g);
    });
    for (const [p, g] of groups) if (!next.has(p)) g.remove();
    groups = next;
  }

  /** Draw `sc` (from layoutScene) for index `index`. A new index redraws everything; otherwise only what changed. */
  function render(sc, index, opts = {}) {
    if (index !== ix) {
      for (const g of groups.values()) g.remove();
      groups = new Map();
    }
    const newIndex = index !== ix;
    ix = index;
    if (opts.metric) metric = opts.metric;
    if ((opts.overlay && opts.overlay !== overlay) || newIndex) {
      overlay = opts.overlay ?? overlay;
      scale = overlay !== 'none' ? overlayScale(ix, overlay) : null;
    }
    if ('selection' in opts) selection = opts.selection;
    if ('painter' in opts) painter = opts.painter ?? null;
    scene = sc;
    applySize();
    drawWires(sc);
    renderBoxes();
    selected = selection != null ? find(selection) : null;
  }

  // Scrolling or resizing a culled scene draws what comes into view, once per frame.
  let viewQueued = false;
  const viewChanged = () => {
    if (viewQueued || !scene || !win) return;
    viewQueued = true;
    requestAnimationFrame(() => {
      viewQueued = false;
      renderBoxes();
    });
  };
  host.addEventListener('scroll', viewChanged);
  new ResizeObserver(viewChanged).observe(host);

  function find(path) {
    return svg.querySelector(`g.box[data-path="${CSS.escape(path)}"], g.bracket[data-path="${CSS.escape(path)}"]`);
  }
  function highlight(path) {
    selection = path;
    if (selected) selected.classList.remove('selected');
    selected = path != null ? find(path) : null;
    if (selected) selected.classList.add('selected');
  }

  /** Mark search hits (data-highlight="true"); they stay marked through redraws until replaced. */
  function setHighlights(paths) {
    highlights = new Set(paths);
    for (const g of svg.querySelectorAll('[data-highlight]')) {
      if (!highlights.has(g.getAttribute('data-path'))) g.removeAttribute('data-highlight');
    }
    for (const path of highlights) find(path)?.setAttribute('data-highlight', 'true');
  }

  /** Scroll so the rectangle {x, y, w, h} (scene units) is in the middle of the view. */
  function reveal(rect) {
    if (!rect) return;
    host.scrollTo({
      left: Math.max(0, (rect.x + rect.w / 2) * zoom - host.clientWidth / 2),
      top: Math.max(0, (rect.y + Math.min(rect.h, 80) / 2) * zoom - host.clientHeight / 2),
    });
  }

  /** Draw every box, off-screen ones too (for an export), or go back to culling big scenes. */
  function setFullDraw(on) {
    fullDraw = Boolean(on);
    if (scene) renderBoxes();
  }

  function setZoom(z) {
    zoom = Math.max(0.05, Math.min(3, z));
    applySize();
    if (scene) renderBoxes();
    return zoom;
  }

  /** The zoom at which the whole scene fits the host, width and height, never above `max`. */
  function fittingZoom(max = 1) {
    if (!scene) return zoom;
    return Math.min(max, (host.clientWidth - 4) / scene.w, (host.clientHeight - 4) / scene.h);
  }

  function fitZoom(max = 1) {
    return setZoom(fittingZoom(max));
  }

  /** Where the box of `path` is on screen (CSS px, viewport coordinates), or null. */
  function screenRect(path) {
    const g = find(path);
    const card = g?.querySelector(':scope > .card') ?? null;
    return card ? card.getBoundingClientRect() : null;
  }

  /** Scroll so that `path`'s card is again at viewport point (left, top): the block the user clicked stays put. */
  function keepAt(path, left, top) {
    const r = screenRect(path);
    if (!r) return;
    host.scrollLeft += r.left - left;
    host.scrollTop += r.top - top;
  }

  // Clicks: the card of a block opens or closes it (and selects it); the body of an opened block, or a bracket,
  // only selects. Enter or Space on a focused block acts like a click on its card.
  svg.addEventListener('click', (event) => {
    const g = event.target.closest('g.box, g.bracket');
    if (!g || !svg.contains(g)) return;
    const path = g.getAttribute('data-path');
    const card = event.target.closest('.card');
    if (g.classList.contains('box') && card && card.parentNode === g) onActivate(path);
    else onSelect(path);
  });
  svg.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' && event.key !== ' ') return;
    const card = event.target;
    if (!(card instanceof SVGElement) || !card.classList.contains('card')) return;
    event.preventDefault();
    onActivate(card.getAttribute('data-path'));
  });

  return {
    render,
    highlight,
    setHighlights,
    reveal,
    setFullDraw,
    setZoom,
    fitZoom,
    fittingZoom,
    screenRect,
    keepAt,
    host,
    get zoom() {
      return zoom;
    },
    focus(path) {
      find(path)?.__card?.focus();
    },
    element: svg,
    get scene() {
      return scene;
    },
  };
}
