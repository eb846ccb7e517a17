// keepclear.js — what floats over the diagram never covers the block being talked about (issue 24). The subject is
// the focused block (focus.js), else the selected one (a lesson's step selects what it talks about): its card, or
// its frame when it is open, as far as it is on screen. Each floating element (the lesson panel, the minimap) has
// places it may sit, in order of preference (data-place, styled in focus.css); after every change it takes the
// first place where it does not meet the subject. An aid with no free place hides (the minimap); the lesson panel,
// which is the lesson itself, keeps its first place. Legends and the zoom sit below the view and cover nothing.
// And the view pans: when a block is opened or the view changes size (the details dock opening beside it), the
// selected block's card is scrolled into view, with as much of its opened body as fits.

import { boxRect } from './layout.js';

const MARGIN = 8; // CSS px kept between a panned-to block and the view's edge

/** The overlap of two rectangles ({left, top, right, bottom}), or null when they do not meet. */
export function intersect(a, b) {
  const r = {
    left: Math.max(a.left, b.left),
    top: Math.max(a.top, b.top),
    right: Math.min(a.right, b.right),
    bottom: Math.min(a.bottom, b.bottom),
  };
  return r.right > r.left && r.bottom > r.top ? r : null;
}

/** The subject's rectangle on screen, clipped to the visible part of the view, or null. */
export function subjectRect(svg, host) {
  const g =
    svg.querySelector('g.box.focused') ?? svg.querySelector('g.box.selected');
  const shape = g && (g.querySelector(':scope > .frame') ?? g.querySelector(':scope > .card > .card-bg'));
  if (!shape) return null;
  const view = host.getBoundingClientRect();
  // The view's client area: scroll bars are not part of what is seen.
  const client = { left: view.left, top: view.top, right: view.left + host.clientWidth, bottom: view.top + host.clientHeight };
  return intersect(shape.getBoundingClientRect(), client);
}

/**
 * Keeps `floats` ([{el, places, hide}]: hide = true when it may vanish for want of a place) off the subject of the
 * diagram (diagram.js). Re-places on the store's changes, a zoom, a scroll or resize of the view, and a float
 * showing itself. Returns {soon, place, pan}.
 */
export function createKeepClear(diagram, store, floats) {
  const host = diagram.host;
  const { state } = store;

  /** Scroll the least that shows the selected block's header, then as much of its body as the view holds. */
  function pan() {
    const path = state.selection;
    if (path == null || document.body.classList.contains('focusing') || !diagram.scene) return; // focus.js places its own block
    const r = boxRect(diagram.scene, path);
    if (!r || r.path !== path) return;
    const z = diagram.zoom;
    const cw = host.clientWidth;
    const ch = host.clientHeight;
    // The SVG is centred while narrower than the view (app.css: margin 0 auto), and starts at its top.
    const x0 = Math.max(0, (cw - diagram.element.width.baseVal.value) / 2) + r.x * z;
    const y0 = r.y * z;
    const x1 = x0 + Math.min(r.w * z, cw - 2 * MARGIN);
    const y1 = y0 + Math.max(r.cardH * z, Math.min(r.h * z, ch - 2 * MARGIN));
    const into = (lo, hi, at, size) => {
      if (lo < at + MARGIN) return lo - MARGIN;
      if (hi > at + size - MARGIN) return Math.min(lo - MARGIN, hi - size + MARGIN);
      return at;
    };
    const left = into(x0, x1, host.scrollLeft, cw);
    const top = into(y0, y1, host.scrollTop, ch);
    if (left !== host.scrollLeft || top !== host.scrollTop) host.scrollTo({ left: Math.max(0, left), top: Math.max(0, top) });
  }

  function placeOne({ el, places, hide }) {
    if (el.hidden || getComputedStyle(el).display === 'none') return;
    const subject = subjectRect(diagram.element, host);
    for (const p of places) {
      el.dataset.place = p;
      if (!subject || !intersect(el.getBoundingClientRect(), subject)) return;
    }
    el.dataset.place = hide ? 'none' : places[0];
  }

  function place() {
    for (const f of floats) placeOne(f);
  }

  let queued = false;
  let panToo = false;
  function soon(andPan = false) {
    panToo ||= andPan === true;
    if (queued) return;
    queued = true;
    // After the frame's other work (a render, a refit, the minimap's update): measure what is drawn.
    requestAnimationFrame(() => {
      queued = false;
      if (panToo) pan();
      panToo = false;
      place();
    });
  }

  for (const type of ['trace', 'selection']) store.on(type, soon);
  store.on('expanded', () => soon(true));
  host.addEventListener('scroll', soon);
  // Not on the reader's own scrolling: only a change of the view's size pans.
  new ResizeObserver(() => soon(true)).observe(host);
  // Focus marks its block by a class; the body's data-focus says when focus moves, data-lesson-shown when a lesson's
  // step has drawn its view.
  const watch = new MutationObserver(soon);
  watch.observe(document.body, { attributes: true, attributeFilter: ['data-focus', 'data-lesson-shown'] });
  // A zoom resizes the drawn SVG; a float shows or hides itself (the minimap, while the U outgrows the view).
  watch.observe(diagram.element, { attributes: true, attributeFilter: ['width', 'height'] });
  for (const { el } of floats) watch.observe(el, { attributes: true, attributeFilter: ['style', 'hidden'] });
  return { soon, place, pan };
}
