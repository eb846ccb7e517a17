// diagram-card.js — one module's card on the diagram: its background (coloured by "Colour by" or a painter),
// the stage strip, the metric bar, the text lines from cards.js, the figure, the open/close chevron and, on the
// big blocks, the tooltip that is also its accessible name. The card element is kept on its box's <g> between
// redraws so that the keyboard focus on it survives.

import { OVERLAY_DARK_FROM, rampColor } from './config.js';
import { ms, percent } from './format.js';
import { barFraction, fittedCardLines, metricOf, overlayValue } from './layout.js';
import { el } from './diagram-svg.js';

// "Colour by" quantities a card's figure can show; the others leave the "Cards show" choice.
const CARD_METRIC = { flops: 'flops', params: 'params', time: 'time' };

/** Draw (or redraw) the card of `box` inside its group `g`. look: {ix, metric, overlay, scale, painter}, the
 * diagram's index and "Cards show" / "Colour by" settings at this render. */
export function drawCard(g, box, depth, { ix, metric, overlay, scale, painter }) {
  const node = box.node;
  const lines = fittedCardLines(ix, node, box.top, box.w);
  const full = lines.full ?? lines; // a long name shortened on the card is whole in its tooltip
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
  card.append(el('text', { class: 't1', x: x0, y: ys[0], 'data-full': lines.full ? full.title : null }, lines.title));
  if (full.title !== node.path && full.title !== node.name) g.setAttribute('aria-label', `${full.title} ${node.path} ${node.kind}`);
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
    const seen = [full.title, full.sub, lines.fact, lines.shape, figure].filter(Boolean).join(', ');
    const tip = `${seen} (${node.kind})${box.expandable ? (box.expanded ? ' — click to close' : ' — click to open') : ''}`;
    card.append(el('title', {}, tip));
  } else if (lines.full) {
    card.append(el('title', {}, `${full.title} — ${full.sub}`)); // only where a name was cut: tooltips cost
  }
  // After the frame (so the frame stays behind it), before the inner flow.
  if (card.parentNode !== g || card.previousSibling !== (g.__frame ?? null)) {
    g.insertBefore(card, g.__frame ? g.__frame.nextSibling : g.firstChild);
  }
  g.__card = card;
  g.setAttribute('data-depth', depth);
}
