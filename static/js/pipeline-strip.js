// pipeline-strip.js — where the U sits (issue 24): a one-line strip of the sampling pipeline, prompt → text encoder
// → UNet × N steps → decoder → image, each stage a button that explains itself in one sentence. Every word and
// number is the trace's (`trace.pipeline`, stated by the server); this module only lays it out.
//
// It floats in the free band of the U's top row, between the embeddings on the left and the context on the right,
// above the skip lanes: the U keeps its whole fit at 1280×720 (there is no spare height for a row of its own). It
// is placed after every draw, zoom, scroll and resize from what is drawn, and hides when the band cannot hold it
// (a block opened wide, the view scrolled down, Focus): it is a first-sight aid and never covers the subject.

import { h } from './dom.js';
import { announce } from './status.js';

const PAD = 6; // CSS px kept between the strip and anything of the U
const SAYS_MAX = 760; // a sentence below the U is at most this wide: a line longer than that is hard to read

/** The free band of the top row: rects ({left, top, right, bottom}, one coordinate space) of the top row's items
 * (`row`), the top of everything below it (`floor`) and the view's client rect (`view`) → the widest gap between
 * the items, from the view's top to the floor, or null. Pure, for the node tests. */
export function freeBand(row, floor, view) {
  const top = view.top + PAD;
  const bottom = Math.min(view.bottom, floor) - PAD;
  if (bottom <= top) return null;
  // The items of the row that reach into the band, as x intervals, left to right.
  const spans = row
    .filter((r) => r.bottom > top && r.top < bottom)
    .map((r) => [r.left, r.right])
    .sort((a, b) => a[0] - b[0]);
  let best = null;
  let x = view.left;
  for (const [l, r] of [...spans, [view.right, view.right]]) {
    const gap = { left: x + PAD, right: Math.min(l, view.right) - PAD };
    if (gap.right - gap.left > (best ? best.right - best.left : 0)) best = gap;
    x = Math.max(x, r);
  }
  return best && { ...best, top, bottom };
}

/** The top row of the U drawn in `svg`, the top of everything below it (`floor`) and the bottom of the whole U
 * (`end`), in viewport coordinates. */
function measureU(svg) {
  const rect = (el) => el.getBoundingClientRect();
  const head = [...svg.querySelectorAll('.layer-boxes > g.box[data-stage="embed"]')];
  const row = [...svg.querySelectorAll('[data-term]'), ...head].map(rect);
  const below = [
    ...svg.querySelectorAll('.layer-boxes > g.box:not([data-stage="embed"]), .layer-skips > g, .row-label, .skip-label'),
  ].map(rect);
  const floor = Math.min(...below.map((r) => r.top));
  const end = Math.max(...[...svg.querySelectorAll('.layer-wires, .layer-skips, .layer-top, .layer-boxes')].map((l) => rect(l).bottom));
  return { row, floor, end };
}

/**
 * The strip in `stage` (the positioned parent of the diagram's view), drawn for each trace of `store` and placed
 * over `diagram`'s free top band; a stage's sentence goes under the strip where the band holds it, else in the
 * free room below the U. Returns {element, place()}.
 */
export function createPipelineStrip(stage, { diagram, store }) {
  const stages = h('ol', { class: 'pipeline-stages' });
  const el = h('nav', { class: 'pipeline-strip', 'aria-label': 'Where the UNet sits: the sampling pipeline', hidden: true },
    stages);
  const says = h('p', { class: 'pipeline-says', role: 'status', hidden: true });
  stage.append(el, says);
  let pipeline = null;
  let chosen = null;

  function explain(id) {
    chosen = id;
    for (const b of stages.querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.stage === id));
    const s = pipeline?.stages.find((x) => x.id === id);
    says.textContent = s ? s.says : '';
    announce('pipelineStage', s ? id : '');
    place();
  }

  function show(trace) {
    pipeline = trace?.pipeline ?? null;
    stages.replaceChildren(...(pipeline?.stages ?? []).map((s) => h('li', { dataset: { stage: s.id } },
      h('button', { type: 'button', class: s.id === 'unet' ? 'unet' : null, 'aria-pressed': 'false', dataset: { stage: s.id },
        title: s.says }, s.label, s.note ? h('span', { class: 'pipeline-note', title: s.note_says }, s.note) : null))));
    explain(null);
  }

  // A click (or Enter, Space) chooses a stage; a click on the chosen one, or Esc, puts its sentence away. Moving
  // the keyboard focus onto a stage explains it too, so a Tab walk reads the pipeline.
  stages.addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (b) explain(chosen === b.dataset.stage ? null : b.dataset.stage);
  });
  stages.addEventListener('focusin', (e) => {
    const b = e.target.closest('button');
    if (b && b.dataset.stage !== chosen && e.target.matches(':focus-visible')) explain(b.dataset.stage);
  });
  el.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && chosen) {
      explain(null);
      e.stopPropagation(); // Esc here puts the sentence away, not a block
    }
  });

  function hide(why) {
    el.hidden = true;
    says.hidden = true;
    announce('pipeline', why);
  }

  /** `node` at the top of `box` (stage-relative CSS px from viewport ones), centred, if it fits: true when it does. */
  function fit(node, box, s) {
    node.hidden = false;
    node.style.maxWidth = `${box.right - box.left}px`;
    const r = node.getBoundingClientRect();
    const over = node.scrollWidth > Math.ceil(r.width) || r.height > box.bottom - box.top + 0.5;
    if (over || r.width > box.right - box.left + 0.5) return false;
    node.style.left = `${(box.left + box.right - r.width) / 2 - s.left}px`;
    node.style.top = `${box.top - s.top}px`;
    return true;
  }

  /** Put the strip in the free band of the U's top row, or hide it where there is none. */
  function place() {
    const svg = diagram.element;
    if (!pipeline) return hide('none');
    if (!svg?.isConnected || document.body.classList.contains('focusing')) return hide('hidden');
    const host = diagram.host;
    const v = host.getBoundingClientRect();
    const view = { left: v.left, top: v.top, right: v.left + host.clientWidth, bottom: v.top + host.clientHeight };
    const { row, floor, end } = measureU(svg);
    const band = freeBand(row, floor, view);
    const s = stage.getBoundingClientRect();
    says.hidden = true;
    if (!band || !fit(el, band, s)) return hide('hidden');
    announce('pipeline', 'shown');
    if (!chosen) return;
    // The sentence: under the strip while the band holds it, else in the room below the U; with neither, it is
    // still the stage's tooltip and the live region's text, and covers nothing.
    const under = { ...band, top: el.getBoundingClientRect().bottom + 3 };
    const w = Math.min(SAYS_MAX, view.right - view.left - 2 * PAD);
    const cx = (view.left + view.right) / 2;
    const room = { left: cx - w / 2, right: cx + w / 2, top: end + PAD, bottom: view.bottom - PAD };
    if (!fit(says, under, s) && !fit(says, room, s)) says.hidden = true;
  }

  let queued = false;
  function soon() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      place();
    });
  }
  // After the diagram's own listeners (main.js registers first): the U is drawn when these run.
  store.on('trace', show);
  for (const type of ['expanded', 'selection', 'walk']) store.on(type, soon);
  diagram.host.addEventListener('scroll', soon);
  new ResizeObserver(soon).observe(diagram.host);
  // A zoom resizes the SVG; Focus and Present change the view (body classes).
  new MutationObserver(soon).observe(diagram.element, { attributes: true, attributeFilter: ['width', 'height'] });
  new MutationObserver(soon).observe(document.body, { attributes: true, attributeFilter: ['class'] });
  return { place: soon, element: el };
}
