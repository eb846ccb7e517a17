// zoom.js — the main diagram's zoom. It follows the window (auto) until the user zooms by hand; "Fit" goes back to
// following it. An opened block may make the U larger than the window: it then shrinks, but not below
// READABLE_ZOOM (scroll for the rest). Presenting (teach.js) fits at up to 2.5×.

const READABLE_ZOOM = 0.7;
const STEP = 1.2;

/** The max zoom of a fit: larger while presenting, so the U fills the projector. */
function fitMax() {
  return document.body.classList.contains('presenting') ? 2.5 : 1;
}

/**
 * Wires the zoom buttons and the refit on resize. state: the store's state (for the opened blocks); host: the
 * diagram's scroll box; level: the "100%" label; buttons: {zoomIn, zoomOut, fit}; onShow(): after every shown
 * zoom (the minimap follows it).
 */
export function createZoom(diagram, { state, host, level, buttons, onShow }) {
  let auto = true;

  function show() {
    level.textContent = `${Math.round(diagram.zoom * 100)}%`;
    onShow?.();
  }

  function refit() {
    if (!diagram.scene) return;
    let z = diagram.fittingZoom(fitMax());
    if (state.expanded.size) z = Math.max(z, Math.min(READABLE_ZOOM, diagram.zoom));
    diagram.setZoom(z);
    show();
  }

  buttons.zoomIn.addEventListener('click', () => {
    auto = false;
    diagram.setZoom(diagram.zoom * STEP);
    show();
  });
  buttons.zoomOut.addEventListener('click', () => {
    auto = false;
    diagram.setZoom(diagram.zoom / STEP);
    show();
  });
  buttons.fit.addEventListener('click', () => {
    auto = true;
    diagram.fitZoom(fitMax());
    show();
  });
  new ResizeObserver(() => {
    if (auto) refit();
  }).observe(host);

  return {
    refit,
    show,
    /** Whether the zoom follows the window; a new model sets it back to true. */
    get auto() {
      return auto;
    },
    set auto(on) {
      auto = on;
    },
  };
}
