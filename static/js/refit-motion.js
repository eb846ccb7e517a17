// refit-motion.js — when opening or closing a block changes the fitted zoom, the U eases from the old scale to
// the new one about the block that was clicked, so the reader sees the picture shrink or grow round it instead of
// jumping. Only a CSS transform on the drawn SVG: the layout and every
// number are final before it starts. Readers who ask for reduced motion get the jump.

const DURATION_MS = 220;
const reduced = window.matchMedia('(prefers-reduced-motion: reduce)');

/**
 * Ease `svg` (the diagram's element) from `ratio` × its size to its size, about the viewport point `anchor`
 * ({left, top}: the clicked card's corner, where it is drawn now; it stays there all through). Returns the Animation, or null when there is nothing to show.
 */
export function easeZoom(svg, ratio, anchor) {
  for (const a of svg.getAnimations()) a.cancel();
  if (reduced.matches || !anchor || !Number.isFinite(ratio) || Math.abs(ratio - 1) < 0.02) return null;
  const box = svg.getBoundingClientRect();
  svg.style.transformOrigin = `${(anchor.left - box.left).toFixed(1)}px ${(anchor.top - box.top).toFixed(1)}px`;
  return svg.animate([{ transform: `scale(${ratio})` }, { transform: 'none' }], {
    duration: DURATION_MS,
    easing: 'ease-out',
  });
}
