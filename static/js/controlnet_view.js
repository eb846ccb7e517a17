// controlnet_view.js — a control model drawn beside the U it steers. For a ControlNet: the parallel encoder (the
// hint path, image 3×H×W down to the latent, then the copied input blocks and the middle block), each output's zero
// conv, and one injection edge per output into the UNet block whose skip (or middle output) it is added to, labelled
// with the API's shape, parameters, FLOPs and control scale. The scales are set here (one global slider, one input
// per injection), sent to the API, and shown on the main U too (decorate). For T2I-Adapters and control-LoRAs
// opened from a file: their injection points on the U and their size, from the detection report.
//
// Injection edges are <path class="cn-injection" data-from=<zero conv> data-to=<UNet target>
// data-consumer=<output block> data-index data-scale>; the panel's dataset.state is loading / ready / error.

import { ADDED_WORDS, canTrace, getControlNames, getControlTrace, kindWords, stateDictNames } from './controlnet.js';
import { compact, exact, shapeText } from './format.js';
import { h } from './dom.js';
import { announce } from './status.js';

const SVG = 'http://www.w3.org/2000/svg';
const ROW = 38; // one row per ControlNet block
const BOX_H = 28;
const COL = { hint: 8, cn: 140, zero: 320, target: 770, end: 980 };
const NAME_LIMIT = 60; // state-dict rows listed before "… and N more"

function s(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, String(v));
  if (text != null) node.textContent = text;
  return node;
}

function box(g, { x, y, w, text, sub, cls, path, title }) {
  const b = s('g', { class: `cn-box ${cls}`, 'data-path': path ?? null, tabindex: path ? 0 : null, role: path ? 'button' : null });
  if (title) b.append(s('title', {}, title));
  b.append(s('rect', { x, y, width: w, height: BOX_H, rx: 5 }));
  b.append(s('text', { x: x + 8, y: y + 12, class: 'cn-box-name' }, text));
  if (sub) b.append(s('text', { x: x + 8, y: y + 24, class: 'cn-box-sub' }, sub));
  g.append(b);
  return b;
}

function arrow(g, pts, cls) {
  const d = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${x} ${y}`).join('');
  const p = s('path', { d, class: `cn-wire ${cls}`, 'marker-end': 'url(#cn-arrow)' });
  g.append(p);
  return p;
}

const scaleText = (v) => `×${Number(v).toFixed(2)}`;

/**
 * host: the panel element (#controlnet); onError(message); onRendered() after each draw (to mark the main U). Returns {show(entry, unetTrace, imageSize),
 * hide(), decorate(svg), state}.
 */
export function createControlView(host, { onError, onRendered }) {
  const state = { entry: null, trace: null, names: null, selection: null, token: 0, imageSize: null };
  let debounce = null;

  function setState(v) {
    host.dataset.state = v;
    announce('control', v);
  }

  function hide() {
    state.token += 1;
    state.entry = null;
    state.trace = null;
    host.hidden = true;
    host.replaceChildren();
    setState('off');
  }

  async function show(entry, unetTrace) {
    const control = entry?.control;
    if (!control) return hide();
    const imageSize = unetTrace?.input?.image_size?.[0] ?? null;
    const same = state.entry === entry && state.imageSize === imageSize && state.trace;
    state.entry = entry;
    state.imageSize = imageSize;
    host.hidden = false;
    if (same) return render();
    if (!canTrace(control)) {
      state.trace = null;
      render();
      setState('ready');
      return;
    }
    await load(null);
  }

  async function load(scales) {
    const mine = ++state.token;
    const control = state.entry.control;
    setState('loading');
    try {
      const [trace, names] = await Promise.all([
        getControlTrace(control, { imageSize: state.imageSize, scales }),
        state.names?.preset === control.preset ? state.names : getControlNames(control).then((n) => ({ ...n, preset: control.preset })),
      ]);
      if (mine !== state.token) return;
      state.trace = trace;
      state.names = names;
      render();
      setState('ready');
    } catch (err) {
      if (mine !== state.token) return;
      host.querySelector('.cn-status')?.replaceChildren(`Could not trace the ControlNet: ${err.reason ?? err.message}`);
      onError?.(`Could not trace the ControlNet: ${err.reason ?? err.message}`);
      setState('error');
    }
  }

  /** New scales from the inputs: sent to the API (debounced), whose trace then shows them. */
  function requestScales(scales) {
    clearTimeout(debounce);
    setState('loading');
    debounce = setTimeout(() => load(scales), 250);
  }

  function render() {
    const { entry, trace } = state;
    const control = entry.control;
    const head = h('div', { class: 'cn-head' },
      h('h2', {}, `${kindWords(control.kind)} beside the U`),
      h('span', { class: 'cn-status status', role: 'status', 'aria-live': 'polite' }));
    if (!trace) {
      host.replaceChildren(head, ...pointsView(control.report));
      onRendered?.();
      return;
    }
    const c = trace.control;
    const intro = h('p', { class: 'hint' },
      `${trace.preset ?? 'This ControlNet'} (${exact(trace.totals.params)} parameters, ${compact(trace.totals.flops)} FLOPs per step) `
      + `copies the encoder of ${c.base_preset ?? 'the UNet drawn above'} and runs beside it on the control image `
      + `${shapeText(c.hint.shape)}. Each of its ${c.injections.length} outputs passes a zero 1×1 conv, is multiplied by its control `
      + 'scale and added to the UNet where the edge ends.');
    host.replaceChildren(head, intro, drawSvg(trace), scalesView(c), h('div', { class: 'cn-details', 'aria-live': 'polite' }));
    if (state.selection) showNames(state.selection);
    onRendered?.();
  }

  function drawSvg(trace) {
    const c = trace.control;
    const node = (p) => trace.nodes.find((n) => n.path === p);
    const injections = c.injections;
    const H = (injections.length + 2) * ROW + 20;
    const svg = s('svg', { class: 'cn-svg', viewBox: `0 0 ${COL.end + 10} ${H}`, role: 'group',
      'aria-label': 'ControlNet beside the UNet: its blocks, zero convs and injections' });
    const defs = s('defs');
    const marker = s('marker', { id: 'cn-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
    marker.append(s('path', { d: 'M0 0L10 5L0 10z', class: 'cn-marker' }));
    defs.append(marker);
    svg.append(defs);
    svg.append(s('text', { x: COL.cn, y: 14, class: 'cn-col' }, 'ControlNet (its own copy of the encoder)'));
    svg.append(s('text', { x: COL.target, y: 14, class: 'cn-col' }, `UNet ${c.base_preset ?? ''}: where it is added`));
    // The hint path: control image → hint encoder → added after input_blocks.0.
    const y0 = 24;
    const hint = node(c.hint_block);
    box(svg, { x: COL.hint, y: y0, w: 120, text: `hint ${shapeText(c.hint.shape)}`, sub: 'control image', cls: 'cn-term' });
    box(svg, { x: COL.cn, y: y0, w: 170, text: c.hint_block, sub: `→ ${shapeText(hint?.outputs?.[0]?.shape)} · ${compact(hint?.params)} params`,
      cls: 'cn-hint', path: c.hint_block, title: `the hint encoder: ${exact(hint?.params)} parameters, ${exact(hint?.flops)} FLOPs` });
    arrow(svg, [[COL.hint + 120, y0 + BOX_H / 2], [COL.cn, y0 + BOX_H / 2]], 'cn-hint-wire');
    const rows = new Map(); // from_block → y
    injections.forEach((inj, i) => rows.set(inj.from_block, y0 + (i + 1) * ROW));
    const hintY = rows.get(c.hint_added_to);
    if (hintY != null) {
      // The encoded hint joins the ControlNet's stream after input_blocks.0: a "+" on that block's right edge.
      arrow(svg, [[COL.cn + 170, y0 + BOX_H / 2], [COL.cn + 190, y0 + BOX_H / 2], [COL.cn + 190, hintY + 6], [COL.cn + 170, hintY + 6]], 'cn-hint-wire');
      svg.append(s('text', { x: COL.cn + 194, y: (y0 + hintY) / 2 + 12, class: 'cn-plus' }, `+ after ${c.hint_added_to}`));
    }
    let prev = null;
    for (const inj of injections) {
      const y = rows.get(inj.from_block);
      const from = node(inj.from_block);
      const zero = node(inj.source);
      box(svg, { x: COL.cn, y, w: 170, text: inj.from_block, sub: `${shapeText(from?.outputs?.[0]?.shape)} · ${compact(from?.params)}`,
        cls: `cn-block stage-${inj.stage}`, path: inj.from_block, title: `${inj.from_block}: ${exact(from?.params)} parameters, ${exact(from?.flops)} FLOPs` });
      if (prev != null) arrow(svg, [[COL.cn + 20, prev + BOX_H], [COL.cn + 20, y]], 'cn-flow');
      prev = y;
      arrow(svg, [[COL.cn + 170, y + BOX_H / 2], [COL.zero, y + BOX_H / 2]], 'cn-flow');
      box(svg, { x: COL.zero, y, w: 120, text: inj.source, sub: 'zero 1×1 conv', cls: 'cn-zero', path: inj.source,
        title: `${inj.source}: ${exact(zero?.params)} parameters, ${exact(zero?.flops)} FLOPs` });
      const edge = arrow(svg, [[COL.zero + 120, y + BOX_H / 2], [COL.target, y + BOX_H / 2]], `cn-injection added-${inj.added_to}`);
      Object.assign(edge.dataset, { from: inj.source, to: inj.target, consumer: inj.consumer, index: inj.index, scale: inj.scale,
        shape: shapeText(inj.shape), params: inj.params, flops: inj.flops });
      edge.append(s('title', {}, `${inj.source} → ${inj.target} (${ADDED_WORDS[inj.added_to]}, read by ${inj.consumer}): `
        + `${shapeText(inj.shape)}, ${exact(inj.params)} parameters, ${exact(inj.flops)} FLOPs, scale ${inj.scale}`));
      svg.append(s('text', { x: COL.zero + 132, y: y + BOX_H / 2 - 4, class: 'cn-edge-label', 'data-index': inj.index },
        `${shapeText(inj.shape)} · ${compact(inj.params)} params · ${compact(inj.flops)} FLOPs · ${scaleText(inj.scale)}`));
      box(svg, { x: COL.target, y, w: 210, text: inj.target,
        sub: inj.added_to === 'middle' ? `middle output → ${inj.consumer}` : `skip → ${inj.consumer}`, cls: `cn-target added-${inj.added_to}`,
        title: `the UNet's ${inj.target}: ${ADDED_WORDS[inj.added_to]}, which ${inj.consumer} reads` });
    }
    svg.addEventListener('click', (e) => {
      const g = e.target.closest('[data-path]');
      if (g) select(g.getAttribute('data-path'));
    });
    svg.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter' && e.key !== ' ') return;
      const g = e.target.closest('[data-path]');
      if (!g) return;
      e.preventDefault();
      select(g.getAttribute('data-path'));
    });
    return h('div', { class: 'cn-scroll' }, svg);
  }

  function scalesView(c) {
    const global = h('input', { type: 'range', min: '0', max: '2', step: '0.05', id: 'cn-scale-all', value: String(c.scales[0] ?? 1),
      'aria-label': 'Control scale for every injection' });
    const globalOut = h('output', { for: 'cn-scale-all', class: 'cn-scale-out' }, scaleText(global.value));
    const inputs = c.injections.map((inj) => h('input', { type: 'number', min: '0', max: '10', step: '0.05', value: String(inj.scale),
      class: 'cn-scale', dataset: { index: inj.index }, 'aria-label': `Control scale of injection ${inj.index} into ${inj.target}` }));
    const read = () => inputs.map((i) => Math.min(10, Math.max(0, Number(i.value) || 0)));
    global.addEventListener('input', () => {
      globalOut.textContent = scaleText(global.value);
      for (const i of inputs) i.value = global.value;
      requestScales(read());
    });
    for (const i of inputs) i.addEventListener('change', () => requestScales(read()));
    const list = h('ol', { class: 'cn-scales', start: '0' }, c.injections.map((inj, k) => h('li', {},
      h('label', {}, h('code', {}, inj.target), ` ${inj.added_to === 'middle' ? '(middle)' : '(skip)'} `, inputs[k]))));
    return h('div', { class: 'cn-scale-tools' },
      h('label', { class: 'inline' }, 'Control scale, all injections ', global, globalOut),
      h('p', { class: 'muted' }, 'Or one per injection (cldm\'s control_scales, 0 to 10): the trace is asked again and the scales shown come back from it.'),
      list);
  }

  function select(path) {
    state.selection = path;
    for (const g of host.querySelectorAll('.cn-box[data-selected]')) g.removeAttribute('data-selected');
    host.querySelector(`.cn-box[data-path="${CSS.escape(path)}"]`)?.setAttribute('data-selected', 'true');
    showNames(path);
  }

  /** The details of one ControlNet block: its numbers and its state-dict names in both layouts. */
  function showNames(path) {
    const panel = host.querySelector('.cn-details');
    if (!panel || !state.trace) return;
    const node = state.trace.nodes.find((n) => n.path === path);
    if (!node) return;
    const names = state.names?.supported ? state.names.names : null;
    const rowsOf = stateDictNames(state.trace, path, names);
    const table = h('table', { class: 'cn-names', dataset: { path } },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'original (cldm)'), h('th', { scope: 'col' }, 'diffusers ControlNetModel'),
        h('th', { scope: 'col' }, 'parameters'))),
      h('tbody', {}, rowsOf.slice(0, NAME_LIMIT).map((r) => h('tr', {},
        h('td', {}, h('code', { class: 'cn-name-ldm' }, r.original)),
        h('td', {}, r.diffusers ? h('code', { class: 'cn-name-diffusers' }, r.diffusers) : h('span', { class: 'muted' }, names ? '(none)' : '—')),
        h('td', { class: 'num' }, exact(r.params))))));
    const more = rowsOf.length > NAME_LIMIT ? h('p', { class: 'muted' }, `… and ${rowsOf.length - NAME_LIMIT} more modules`) : null;
    panel.replaceChildren(
      h('h3', {}, path),
      h('p', {}, `${node.kind}: ${exact(node.params)} parameters, ${exact(node.flops)} FLOPs, output ${shapeText(node.outputs?.[0]?.shape)}.`),
      h('p', { class: 'muted' }, 'State-dict names: the tensors of each module sit under these prefixes (.weight, .bias); '
        + 'a ControlLDM checkpoint adds control_model. in front of the original names.'
        + (names ? '' : ` Diffusers names: ${state.names?.reason ?? 'not available'}.`)),
      table, more);
  }

  /** Where the control model lands, as data: the ControlNet trace's injections, or a file report's points. */
  function points() {
    if (state.trace) return state.trace.control.injections.map((i) => ({ ...i, label: `ctrl ${scaleText(i.scale)}` }));
    const report = state.entry?.control?.report;
    if (!report) return [];
    return report.injections.map((p) => ({ ...p, label: `${kindWords(report.kind)} +${p.channels} ch` }));
  }

  /** Mark the injections on the main U: beside each skip label it feeds, and on the blocks it adds to. */
  /** Whether a drawn label overlaps any other skip label or control mark (in the skips' own coordinates). */
  function collides(svg, mark) {
    const a = mark.getBBox();
    for (const other of svg.querySelectorAll('.layer-skips .skip-label, .layer-skips .cn-on-u')) {
      if (other === mark) continue;
      const b = other.getBBox();
      if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height) return true;
    }
    return false;
  }

  function decorate(svg) {
    if (!svg || !state.entry?.control) return;
    for (const old of svg.querySelectorAll('.cn-on-u')) old.remove();
    for (const p of points()) {
      const attrs = { class: `cn-on-u added-${p.added_to}`, 'data-to': p.target, 'data-index': p.index, 'data-scale': p.scale ?? null };
      const skip = p.added_to === 'skip' ? svg.querySelector(`g.skip[data-skip-from="${CSS.escape(p.target)}"]`) : null;
      const label = skip?.querySelector('.skip-label');
      if (label) {
        // After the label's drawn end, whatever its anchor (issue 24: it overprinted "320×64×64" when it assumed one).
        const box = label.getBBox();
        const mark = s('text', { ...attrs, x: box.x + box.width + 6, y: label.getAttribute('y') }, `⊕ ${p.label}`);
        skip.append(mark);
        // A neighbouring skip's label where it lands: before this label instead, else just above it.
        if (collides(svg, mark)) {
          mark.setAttribute('x', box.x - 6);
          mark.setAttribute('text-anchor', 'end');
        }
        if (collides(svg, mark)) {
          mark.setAttribute('x', box.x + box.width / 2);
          mark.setAttribute('text-anchor', 'middle');
          mark.setAttribute('y', box.y - 2);
        }
        continue;
      }
      // The middle block's output, or an encoder point (T2I-Adapter): a badge on the block's top edge.
      // (Boxes are placed by a transform: the card's rect starts at 0, 0 inside its group.)
      const g = svg.querySelector(`g.box[data-path="${CSS.escape(p.target)}"]`);
      const rect = g?.querySelector('rect.card-bg');
      if (!rect) continue;
      g.append(s('text', { ...attrs, x: Number(rect.getAttribute('width')) - 4, y: -4, 'text-anchor': 'end' }, `⊕ ${p.label}`));
    }
  }

  function pointsView(report) {
    if (!report) return [h('p', { class: 'muted' }, 'No injections to draw.')];
    const list = h('ol', { class: 'cn-points', start: '0' }, report.injections.map((p) => h('li', { dataset: { target: p.target, addedTo: p.added_to } },
      h('code', {}, p.target), ` ${ADDED_WORDS[p.added_to] ?? p.added_to}: ${p.channels} channels at latent / ${p.factor}`)));
    return [
      h('p', { class: 'hint' }, `${kindWords(report.kind)}: ${exact(report.num_parameters)} parameters (${compact(report.num_parameters)}) in the file; `
        + `its ${report.injections.length} outputs are marked ⊕ on the U above.`),
      list,
    ];
  }

  hide();
  return { show, hide, decorate, state };
}
