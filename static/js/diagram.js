// diagram.js — draws a scene from layout.js as SVG and turns clicks and keys on it into intents (open, select).
// Every drawn module is a <g class="box" data-path data-kind data-expanded>, nested inside the block that contains
// it; its card is the focusable button (named by its visible text; aria-expanded when it can open), so that an
// opened block's children are not nested inside another button. Groups are kept by path between renders: a subtree
// whose layout object did not change is not touched, so opening one block costs only its ancestors. Past CULL_MIN
// boxes (SDXL fully opened) the insides of opened blocks far from the visible area are left out until scrolled to:
// the DOM stays small and every interaction fast. All text goes in via textContent.
// This module keeps the groups, zoom, culling and events; diagram-card.js draws a card, diagram-svg.js the wires,
// ops, terminals and an opened block's decoration.

import { SIZES as Z } from './config.js';
import { KINDS } from './kinds.js';
import { overlayScale } from './layout.js';
import { drawCard } from './diagram-card.js';
import { drawDeco, drawWires, el, markerDefs, placeAt } from './diagram-svg.js';

// Past this many boxes, only what is near the visible area gets its inside drawn (SDXL fully open has ~2000).
const CULL_MIN = 700;
// Each diagram after the first (the compare view draws two more) gets its own marker ids.
let instances = 0;

export function createDiagram(host, { onActivate, onSelect, label = 'UNet diagram: click a block to open it' }) {
  const ids = instances ? `-${instances}` : '';
  instances += 1;
  const svg = el('svg', { class: 'unet', role: 'group', 'aria-label': label });
  const defs = markerDefs(ids);
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
      const cat = KINDS[node.category]?.style ?? (node.children.length ? 'container' : 'other');
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
      drawCard(g, box, depth, { ix, metric, overlay, scale, painter });
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
        drawDeco(inner, box.inner, ids, highlights);
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
    drawWires({ wires, skipsLayer, topLayer }, sc, ids);
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
