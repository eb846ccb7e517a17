// panels.js — the page's folding panels (Tools, Details): a toolbar button opens and shuts its panel and says so in
// aria-expanded. The diagram takes the room a shut panel leaves (zoom.js refits it on resize).

/** Wires `button` to fold `panel`; returns set(open) for the page to open or shut it itself. */
export function foldable(panel, button) {
  function set(open) {
    panel.hidden = !open;
    button.setAttribute('aria-expanded', open ? 'true' : 'false');
  }
  button.addEventListener('click', () => set(panel.hidden));
  return set;
}
