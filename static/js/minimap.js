// minimap.js — the overview in the diagram's corner: the whole U as small blocks (the top-level ones, coloured by
// stage) and a frame round the part of it that is on screen. It shows only while the U is larger than the window
// (an opened block, a hand-set zoom); a click or a drag on it moves the view there. Drawn from the scene that
// diagram.js draws, so it never disagrees with the U.

import { el } from './diagram-svg.js';

const MAX_W = 170; // CSS px: small enough to leave the U its room at 1280×720
const MAX_H = 110;

/**
 * The overview of `diagram` (diagram.js: host, element, zoom, scene), placed in `container` (the diagram's panel).
 * draw(scene) after each render; update() after the zoom changed (scrolling and resizing it follows by itself);
 * both take effect in the next frame.
 */
export function createMinimap(container, diagram) {
  const svg = el('svg', {
    class: 'minimap',
    role: 'img',
    'aria-label': 'Overview of the U: the frame is the part on screen',
    'data-field': 'minimap',
    'data-shown': 'false',
  });
  svg.style.display = 'none'; // until the first update() finds the U larger than the view
  const blocks = el('g', {});
  const frame = el('rect', { class: 'minimap-view' });
  svg.append(blocks, frame);
  container.append(svg);
  let scene = null;
  let k = 1; // minimap px per scene unit

  /** The part of the scene on screen, in scene units (the SVG is centred in the host while it is narrower). */
  function visibleRect() {
    const host = diagram.host.getBoundingClientRect();
    const drawn = diagram.element.getBoundingClientRect();
    const z = diagram.zoom;
    const x0 = Math.max(0, (host.left - drawn.left) / z);
    const y0 = Math.max(0, (host.top - drawn.top) / z);
    return {
      x: x0,
      y: y0,
      w: Math.min(scene.w - x0, diagram.host.clientWidth / z),
      h: Math.min(scene.h - y0, diagram.host.clientHeight / z),
    };
  }

  function update() {
    const host = diagram.host;
    const fits = !scene || (host.scrollWidth <= host.clientWidth + 1 && host.scrollHeight <= host.clientHeight + 1);
    svg.style.display = fits ? 'none' : '';
    svg.dataset.shown = fits ? 'false' : 'true';
    if (fits) return;
    const r = visibleRect();
    frame.setAttribute('x', (r.x * k).toFixed(1));
    frame.setAttribute('y', (r.y * k).toFixed(1));
    frame.setAttribute('width', Math.max(2, r.w * k).toFixed(1));
    frame.setAttribute('height', Math.max(2, r.h * k).toFixed(1));
  }

  function draw(sc) {
    scene = sc;
    k = Math.min(MAX_W / sc.w, MAX_H / sc.h);
    svg.setAttribute('width', Math.round(sc.w * k));
    svg.setAttribute('height', Math.round(sc.h * k));
    blocks.replaceChildren(
      ...sc.tops.map((t) =>
        el('rect', {
          class: `mm-${t.stage}`,
          x: (t.x * k).toFixed(1),
          y: (t.y * k).toFixed(1),
          width: Math.max(1, t.box.w * k).toFixed(1),
          height: Math.max(1, t.box.h * k).toFixed(1),
          rx: 1,
        }),
      ),
    );
    soon();
  }

  let queued = false;
  function soon() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      update();
    });
  }

  /** Centre the view on the minimap point of a pointer event. */
  function panTo(event) {
    if (!scene) return;
    const r = svg.getBoundingClientRect();
    const x = (event.clientX - r.left) / k;
    const y = (event.clientY - r.top) / k;
    const z = diagram.zoom;
    diagram.host.scrollTo({ left: x * z - diagram.host.clientWidth / 2, top: y * z - diagram.host.clientHeight / 2 });
  }
  svg.addEventListener('pointerdown', (event) => {
    svg.setPointerCapture(event.pointerId);
    panTo(event);
  });
  svg.addEventListener('pointermove', (event) => {
    if (svg.hasPointerCapture(event.pointerId)) panTo(event);
  });

  diagram.host.addEventListener('scroll', soon);
  new ResizeObserver(soon).observe(diagram.host);

  // update() is asked for by a render, by the zoom and by the scroll, often several times in one task: it runs
  // once, in the next frame, where it reads the layout the browser computes for that frame anyway (read at once,
  // after each write, it forced a layout of the whole U each time: a third of a lesson step).
  return { draw, update: soon, element: svg };
}
