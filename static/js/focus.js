// focus.js — Focus: one block fills the diagram's view, large enough to read from the back of a room (issue 24).
// The "Focus" button or the key F focuses the selected block (again: leaves); in Present, opening a block focuses
// it. Esc returns to the whole U (the block stays open). While focused the zoom follows the block, not the window:
// opening something inside it, or resizing the window, fits the block again; closing it leaves focus.
// The zoom never drops below FOCUS_MIN_ZOOM, so a block too big to fit is scrolled rather than shrunk.

import { boxRect } from './layout.js';
import { announce } from './status.js';

// Card titles are 11.5 px at zoom 1 and the smallest text inside an opened block (shapes on arrows, op labels)
// 9.5 px (app.css): at this zoom titles are 14 px and that text 11.6 px, the floor at 1280×720. A tenth of
// a pixel more, because the drawn SVG's size is rounded to whole pixels (diagram.js), which can scale it down a hair.
export const FOCUS_MIN_ZOOM = 14.1 / 11.5;
const FOCUS_MAX_ZOOM = 3; // diagram.setZoom's own ceiling
const MARGIN = 16; // CSS px left round the block, so its frame is seen whole

/** The zoom at which a box of w × h scene units fills a view of viewW × viewH px: never below the floor. */
export function focusZoom(w, h, viewW, viewH) {
  const fit = Math.min((viewW - 2 * MARGIN) / w, (viewH - 2 * MARGIN) / h);
  return Math.max(FOCUS_MIN_ZOOM, Math.min(FOCUS_MAX_ZOOM, fit));
}

/**
 * Wires focus. els: {button}; hooks: store, diagram (diagram.js), zoom (zoom.js: auto, refit, show), isPresenting().
 * Returns {enter(path), leave(), get path}.
 */
export function createFocus({ button }, { store, diagram, zoom, isPresenting }) {
  const { state } = store;
  const host = diagram.host;
  let path = null;

  /** Zoom so the focused block fills the host, and scroll it into the middle (its top-left when too big). */
  function apply() {
    if (path == null || !diagram.scene) return;
    const r = boxRect(diagram.scene, path);
    if (!r) return;
    const z = diagram.setZoom(focusZoom(r.w, r.h, host.clientWidth, host.clientHeight));
    // A refit's ease (refit-motion.js) scales the SVG for a moment: measure and scroll where it will end.
    for (const a of diagram.element.getAnimations()) a.finish();
    const svgBox = diagram.element.getBoundingClientRect();
    const hostBox = host.getBoundingClientRect();
    const x = svgBox.left - hostBox.left + host.scrollLeft + r.x * z;
    const y = svgBox.top - hostBox.top + host.scrollTop + r.y * z;
    host.scrollTo({
      left: Math.max(0, x - Math.max(MARGIN, (host.clientWidth - r.w * z) / 2)),
      top: Math.max(0, y - Math.max(MARGIN, (host.clientHeight - r.h * z) / 2)),
    });
    zoom.show();
  }

  function mark() {
    announce('focus', path ?? '');
    document.body.classList.toggle('focusing', path != null);
    button.setAttribute('aria-pressed', path != null ? 'true' : 'false');
    for (const g of diagram.element.querySelectorAll('g.box.focused')) g.classList.remove('focused');
    if (path != null) diagram.element.querySelector(`g.box[data-path="${CSS.escape(path)}"]`)?.classList.add('focused');
  }

  function enter(p) {
    if (p == null || !diagram.scene || !boxRect(diagram.scene, p)) return;
    path = p;
    zoom.auto = false; // the zoom follows the block now, not the window
    mark();
    apply();
  }

  function leave() {
    if (path == null) return;
    path = null;
    mark();
    zoom.auto = true;
    zoom.refit();
  }

  function syncButton() {
    button.disabled = path == null && state.selection == null;
  }

  button.addEventListener('click', () => (path != null ? leave() : enter(state.selection)));

  const inside = (p, outer) => p === outer || p.startsWith(`${outer}.`);
  let opened = new Set(state.expanded);
  store.on('expanded', () => {
    const expanded = state.expanded;
    const added = [...expanded].filter((p) => !opened.has(p));
    opened = new Set(expanded);
    if (path != null && !expanded.has(path)) {
      leave(); // the focused block was closed
    } else if (path != null && added.length === 1 && !inside(added[0], path)) {
      enter(added[0]); // a block opened beside the focused one takes the focus
    } else if (path != null) {
      mark(); // one opened inside the focused block grows it: fit it again
      apply();
    } else if (isPresenting() && added.length === 1) {
      enter(added[0]); // in Present a block opened from the whole U fills the screen
    }
  });
  store.on('selection', syncButton);
  // A new model or size draws a new U: the old block is gone from view.
  store.on('trace', () => {
    if (path != null && !state.trace?.nodes.some((n) => n.path === path)) leave();
    else if (path != null) {
      mark();
      apply();
    }
    syncButton();
  });
  new ResizeObserver(() => {
    if (path != null) requestAnimationFrame(apply);
  }).observe(host);

  // Capture phase: Esc leaves focus before teach.js would close the block or leave Present.
  window.addEventListener(
    'keydown',
    (event) => {
      const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(event.target?.tagName ?? '');
      if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === 'Escape' && path != null) {
        event.preventDefault();
        event.stopPropagation();
        leave();
      } else if (event.key === 'f' || event.key === 'F') {
        event.preventDefault();
        if (path != null) leave();
        else {
          const at = document.activeElement?.closest?.('svg.unet [data-path]')?.getAttribute('data-path');
          enter(at ?? state.selection);
        }
      }
    },
    true,
  );

  syncButton();
  return {
    enter,
    leave,
    get path() {
      return path;
    },
  };
}
