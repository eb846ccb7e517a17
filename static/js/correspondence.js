// correspondence.js — DIFT's use of diffusion features, in the Probes view: click a pixel of one picture of the
// twin's world, and the second picture marks its best match by cosine similarity of one point's features, with the
// similarity map over it (POST /api/correspondence). Only drawing and requests: every number is the server's.

import * as api from './api.js';
import { h } from './dom.js';

const PIXEL = 6; // screen pixels per picture pixel (32 → 192)

/** Click a pixel of one picture; the other marks its best match by cosine similarity of one point's features. */
export function createCorrespondence() {
  const point = h('input', { id: 'corr-point', type: 'text', value: 'up-level0-upsampler-out', size: 30 });
  const t = h('input', { id: 'corr-t', type: 'number', min: 0, max: 999, value: 261 });
  const src = h('input', { id: 'corr-src', type: 'number', min: 0, value: 710000 });
  const tgt = h('input', { id: 'corr-tgt', type: 'number', min: 0, value: 710001 });
  const left = h('canvas', { id: 'corr-source', width: 32 * PIXEL, height: 32 * PIXEL, class: 'corr-canvas',
    'aria-label': 'Source picture: click a pixel' });
  const right = h('canvas', { id: 'corr-target', width: 32 * PIXEL, height: 32 * PIXEL, class: 'corr-canvas',
    'aria-label': 'Target picture with the similarity map and the best match' });
  const line = h('p', { id: 'corr-line', class: 'hint' }, 'Click a pixel of the left picture.');
  const box = h('div', { class: 'corr', id: 'correspondence' },
    h('h3', {}, 'Correspondence (DIFT’s use)'),
    h('div', { class: 'gen-form' },
      h('label', { class: 'field inline', for: 'corr-point' }, 'Point ', point),
      h('label', { class: 'field inline', for: 'corr-t' }, 't ', t),
      h('label', { class: 'field inline', for: 'corr-src' }, 'Source seed ', src),
      h('label', { class: 'field inline', for: 'corr-tgt' }, 'Target seed ', tgt)),
    h('div', { class: 'corr-pair' }, left, right), line);

  let last = { x: 16, y: 16 };
  let asked = 0; // only the latest question's answer is drawn

  async function ask(x, y) {
    last = { x, y };
    const mine = ++asked;
    line.textContent = 'matching…';
    delete box.dataset.match;
    try {
      const out = await api.correspondence({ point: point.value.trim(), t: Number(t.value),
        source_seed: Number(src.value), target_seed: Number(tgt.value), x, y });
      if (mine !== asked) return;
      await paint(left, out.source.image, null, { x, y });
      await paint(right, out.target.image, out.similarity, out.match);
      line.textContent = `(${x}, ${y}) in “${out.source.caption}” → best match (${out.match.x}, ${out.match.y}) in ` +
        `“${out.target.caption}” (its object’s centre: ${out.target.centre.x.toFixed(1)}, ${out.target.centre.y.toFixed(1)}).`;
      box.dataset.match = `${x},${y}:${out.match.x},${out.match.y}`;
    } catch (e) {
      if (mine === asked) line.textContent = e.field ? `${e.field}: ${e.reason ?? e.message}` : e.message;
    }
  }

  for (const input of [point, t, src, tgt]) input.addEventListener('change', () => ask(last.x, last.y));
  // The two pictures appear once the panel is first on screen (not at page load: it costs a forward).
  const seen = new IntersectionObserver((entries) => {
    if (!entries.some((e) => e.isIntersecting)) return;
    seen.disconnect();
    if (!asked) ask(last.x, last.y);
  });
  seen.observe(box);

  left.addEventListener('click', (ev) => {
    const r = left.getBoundingClientRect();
    ask(Math.floor(((ev.clientX - r.left) / r.width) * 32), Math.floor(((ev.clientY - r.top) / r.height) * 32));
  });
  return box;
}

/** Draw a 32x32 picture enlarged, an optional similarity map over it (red = similar) and a marker. */
function paint(canvas, src, sim, mark) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => {
      const c = canvas.getContext('2d');
      c.imageSmoothingEnabled = false;
      c.drawImage(img, 0, 0, canvas.width, canvas.height);
      if (sim) {
        const lo = Math.min(...sim.flat());
        const hi = Math.max(...sim.flat());
        for (let y = 0; y < 32; y++) {
          for (let x = 0; x < 32; x++) {
            const v = hi > lo ? (sim[y][x] - lo) / (hi - lo) : 0;
            c.fillStyle = `rgba(255, 40, 0, ${(0.55 * v * v).toFixed(3)})`;
            c.fillRect(x * PIXEL, y * PIXEL, PIXEL, PIXEL);
          }
        }
      }
      if (mark) {
        c.strokeStyle = '#00e5ff';
        c.lineWidth = 2;
        c.strokeRect(mark.x * PIXEL - 2, mark.y * PIXEL - 2, PIXEL + 4, PIXEL + 4);
      }
      resolve();
    };
    img.src = src;
  });
}
