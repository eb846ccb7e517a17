// u-geometry.js — the U: top-level boxes placed by stage and level, the flow between them, skip connections in
// lanes above the up row they enter, the time-embedding and context buses; two scenes lined up; where a box is.

import { FONT, SIZES as Z, textWidth } from './config.js';
import { createMemo, layoutBox } from './block-geometry.js';
import { shapeText } from './format.js';
import { hasRole } from './kinds.js';


function termOf(text, cls, title = null) {
  return { text, cls, title, w: Math.ceil(textWidth(text, FONT.sub) + 20), h: Z.termH };
}

/** The x and out terminals: a name over a shape, narrow. */
function ioTerm(text, shape, title) {
  const w = Math.ceil(Math.max(textWidth(text, FONT.io), textWidth(shape, FONT.io, true)) + 14);
  return { text, sub: shape, cls: 'io', title, w, h: Z.ioH };
}

/** The top-level blocks sorted into the U: header (embeddings), down[L], up[L] (the output head last in up[0]),
 * the middle block. */
function partition(ix, boxes) {
  const header = [];
  const down = [];
  const up = [];
  let mid = null;
  let outPath = null;
  for (const b of ix.blocks) {
    if (!boxes.has(b.path)) continue;
    if (b.stage === 'embed') header.push(b.path);
    else if (b.stage === 'down') (down[b.level] ??= []).push(b.path);
    else if (b.stage === 'up') (up[b.level] ??= []).push(b.path);
    else if (b.stage === 'mid') mid = b.path;
    else if (b.stage === 'out') outPath = b.path;
  }
  const levels = Math.max(down.length, up.length, 1);
  for (let L = 0; L < levels; L += 1) {
    down[L] ??= [];
    up[L] ??= [];
  }
  if (outPath) up[0].push(outPath);
  return { header, down, up, mid, outPath, levels };
}

/** Each row's label: its latent resolution and level. */
function rowLabelText(input, L) {
  const sample = input.sample_size ?? input.x?.shape?.slice(2) ?? [];
  return sample.map((v) => v / 2 ** L).join('×');
}

// Turning from one row to the next, the flow runs along one of two tracks in the carriage above the lower row: the
// down stage's turns on the upper track, the up stage's on the lower one, so that no two turns share a line.
const TURN_OUT = 8; // how far right of its block a turn leaves
const TURN_IN = 10; // how far left of its block a turn arrives

/** The terminals of the U: x and out (name over shape), the timestep, y and the context when the model has them. */
function sceneTerms(ix, input, outPath) {
  const xTerm = { ...ioTerm('x', shapeText(input.x?.shape), 'the noisy latent'), id: ':x' };
  const outShape = ix.nodes.get(outPath ?? '')?.outputs?.[0]?.shape ?? input.x?.shape;
  const outTerm = { ...ioTerm('out', shapeText(outShape), 'the prediction'), id: ':out' };
  const anyCtx = [...ix.uses.values()].some((u) => u.ctx);
  const anyEmb = [...ix.uses.values()].some((u) => u.emb);
  const ctxTerm = anyCtx ? { ...termOf(`context ${shapeText(input.context?.shape)}`, 'ctx', 'the conditioning tokens (text)'), id: ':context' } : null;
  const tTerm = { ...termOf('timestep t', 'emb', 'the diffusion timestep'), id: ':t' };
  const yTerm = input.y ? { ...termOf(`y ${shapeText(input.y.shape)}`, 'emb', 'class or pooled-text conditioning'), id: ':y' } : null;
  return { xTerm, outTerm, ctxTerm, tTerm, yTerm, anyCtx, anyEmb };
}

/** The scene's width: the widest of the two arms of the U around the centre gap, the header row, the middle block. */
function sceneWidth(input, boxes, { header, down, up, mid, levels }, terms, gap) {
  const { xTerm, outTerm, ctxTerm, tTerm, yTerm } = terms;
  const rowWidth = (paths) => paths.reduce((s, p) => s + boxes.get(p).w, 0) + gap * Math.max(0, paths.length - 1);
  // The middle of each row holds its label, flanked by the two turns: wide enough at the widest row too.
  const labelW = Math.max(...Array.from({ length: levels }, (_, L) => textWidth(rowLabelText(input, L), 11, true)), 40);
  const centerGap = Math.max(Z.uCenterGap, Math.ceil(labelW + TURN_OUT + TURN_IN + 12));
  const leftW = Math.max(0, ...down.map((r, L) => rowWidth(r) + L * Z.uIndent));
  const rightW = Math.max(0, ...up.map((r, L) => rowWidth(r) + L * Z.uIndent));
  const timeBox = header.map((p) => boxes.get(p));
  const headerW = xTerm.w + 3 * gap + tTerm.w + gap + timeBox.reduce((s, b) => s + b.w + 2 * gap + 2 * Z.opR, 0)
    + (yTerm ? yTerm.w : 0) + (ctxTerm ? ctxTerm.w + 4 * gap : 0) + outTerm.w + 2 * gap;
  const midBox = mid ? boxes.get(mid) : null;
  return Math.ceil(2 * Z.margin + Math.max(leftW + centerGap + rightW, headerW, midBox ? midBox.w + 200 : 0));
}

/**
 * Rows and channels, top to bottom: above each row (index `levels` is the middle row) a carriage with two turn
 * tracks, the skip lanes, the bus lanes. Returns the rows' tops, the skips entering each up row, the track and
 * lane heights (g), the scene's height and the natural geometry (for alignScenes); `align` adds room.
 */
function stackRows(ix, input, boxes, { header, down, up, mid, levels }, { anyEmb, anyCtx }, align) {
  const headerTop = Z.marginY;
  const headerH = Math.max(align?.headerH ?? 0, Z.top.h, ...header.map((p) => boxes.get(p).h));
  const skipsInto = Array.from({ length: levels + 1 }, () => []);
  const upLevel = new Map();
  up.forEach((r, L) => r.forEach((p) => upLevel.set(p, L)));
  for (const s of ix.trace.skips) if (upLevel.has(s.to)) skipsInto[upLevel.get(s.to)].push(s);
  const busLanes = (anyEmb ? 1 : 0) + (anyCtx ? 1 : 0);
  const channelH = (L) => Z.carriage + skipsInto[L].length * Z.laneH + busLanes * Z.busH + Z.channelPad;
  const rowTop = [];
  const chTop = [];
  const sample = input.sample_size ?? input.x?.shape?.slice(2) ?? [0];
  const geometry = { levels, headerH, channel: [], row: [], res: Array.from({ length: levels }, (_, L) => sample[0] / 2 ** L) };
  let y = headerTop + headerH + Z.headerGap;
  for (let L = 0; L <= levels; L += 1) {
    if (L === levels) y += align?.beforeMid ?? 0; // room for levels the other model has and this one lacks
    if (L < levels) y += align?.before?.[L] ?? 0;
    const paths = L < levels ? [...down[L], ...up[L]] : mid ? [mid] : [];
    const hRow = Math.max(Z.top.h, ...paths.map((p) => boxes.get(p).h));
    geometry.channel[L] = channelH(L);
    geometry.row[L] = hRow;
    // Extra height goes above the channel, so the lanes stay next to the row they feed.
    chTop[L] = y + Math.max(0, (align?.channel[L] ?? 0) - channelH(L));
    rowTop[L] = chTop[L] + channelH(L);
    y = rowTop[L] + Math.max(hRow, align?.row[L] ?? 0);
  }
  const g = {
    rowTop,
    trackDown: (L) => chTop[L] + 3,
    trackUp: (L) => chTop[L] + Z.carriage - 2,
    laneY: (L, k) => chTop[L] + Z.carriage + k * Z.laneH + Z.laneH - 3,
    embY: (L) => chTop[L] + Z.carriage + skipsInto[L].length * Z.laneH + Z.busH / 2,
  };
  g.ctxY = (L) => g.embY(L) + (anyEmb ? Z.busH : 0);
  return { headerTop, rowTop, skipsInto, g, H: Math.ceil(y + Z.marginY), geometry };
}

/**
 * The whole scene: top-level boxes placed on the U, the flow between them, skip connections in lanes above the
 * up row they enter, and the time-embedding and context buses with a path into every block that consumes them.
 * Every edge names its producer and consumer (`from`, `to`: a module path, a terminal such as `:x`, or a drawn
 * operation such as `:add_label`). `align` (from alignScenes) makes rows at least as tall as another model's, so
 * two U's side by side line up; `scene.geometry` reports the natural heights it needs.
 */
export function layoutScene(ix, expanded, memo = createMemo(), align = null) {
  const boxes = new Map();
  for (const b of ix.blocks) if (ix.nodes.has(b.path)) boxes.set(b.path, layoutBox(ix, b.path, expanded, memo));
  const parts = partition(ix, boxes);
  const { header, down, up, mid, outPath, levels } = parts;
  const input = ix.trace.input ?? {};
  const io = sceneTerms(ix, input, outPath);
  const { xTerm, outTerm, ctxTerm, tTerm, yTerm, anyCtx, anyEmb } = io;
  const gap = Z.uGapX;
  const W = sceneWidth(input, boxes, parts, io, gap);
  const sc = { W, place: new Map(), rowOf: new Map(), terms: [], edges: [], ops: [], dots: [], skips: [], buses: [] };
  const { headerTop, rowTop, skipsInto, g, H, geometry } = stackRows(ix, input, boxes, parts, io, align);

  placeRows(sc, boxes, { down, up, mid, levels, gap, rowTop });
  const ports = placeHeader(sc, ix, boxes, { header, headerTop, xTerm, tTerm, yTerm, ctxTerm, outTerm, outPath, down, gap });
  const rowLabels = labelRows(sc, input, { down, up, levels, rowTop });
  flowEdges(sc, ix, g);
  skipLanes(sc, skipsInto, g, levels);
  if (anyEmb && ports.emb) embBus(sc, ix, ports.emb, g);
  if (anyCtx && ports.ctx) ctxBus(sc, ix, ports.ctx, g);

  const tops = ix.blocks.filter((b) => sc.place.has(b.path)).map((b) => ({ ...sc.place.get(b.path), stage: b.stage }));
  const { terms, edges, ops, dots, skips, buses } = sc;
  return { w: W, h: H, tops, terms, edges, ops, dots, skips, buses, rowLabels, geometry };
}

const portY = (p) => p.y + Z.portDy;

function placeRows(sc, boxes, { down, up, mid, levels, gap, rowTop }) {
  const { W, place, rowOf } = sc;
  const rowWidth = (paths) => paths.reduce((s, p) => s + boxes.get(p).w, 0) + gap * Math.max(0, paths.length - 1);
  for (let L = 0; L < levels; L += 1) {
    let x = Z.margin + L * Z.uIndent;
    for (const p of down[L]) {
      place.set(p, { box: boxes.get(p), x, y: rowTop[L] });
      rowOf.set(p, L);
      x += boxes.get(p).w + gap;
    }
    let xr = W - Z.margin - L * Z.uIndent - rowWidth(up[L]);
    for (const p of up[L]) {
      place.set(p, { box: boxes.get(p), x: xr, y: rowTop[L] });
      rowOf.set(p, L);
      xr += boxes.get(p).w + gap;
    }
  }
  if (mid) {
    const b = boxes.get(mid);
    const lastDown = down[levels - 1].at(-1);
    const firstUp = up[levels - 1][0];
    let cx = W / 2;
    if (lastDown && firstUp) cx = (place.get(lastDown).x + place.get(lastDown).box.w + place.get(firstUp).x) / 2;
    place.set(mid, { box: b, x: Math.max(Z.margin, Math.min(W - Z.margin - b.w, cx - b.w / 2)), y: rowTop[levels] });
    rowOf.set(mid, levels);
  }
}

/** The header band: x above the first block, t → time_embed (⊕ label_emb ← y), the context, and out above the
 * output head. Returns where the time embedding and the context leave it. */
function placeHeader(sc, ix, boxes, o) {
  const { place, terms, edges, ops } = sc;
  const { headerTop, gap } = o;
  const midY = headerTop + Z.portDy;
  const first = place.get(o.down[0]?.[0]);
  let hx = Z.margin;
  if (first) {
    // x drops into the first block from above, left of its middle (its skip leaves from the middle).
    const xPos = { ...o.xTerm, x: first.x, y: midY - Z.ioH / 2 };
    terms.push(xPos);
    const ax = first.x + Math.min(18, o.xTerm.w / 2);
    edges.push({ pts: [[ax, xPos.y + xPos.h], [ax, first.y]], cls: 'flow', head: true, from: ':x', to: first.box.path });
    hx = xPos.x + xPos.w + 3 * gap;
  }
  const tPos = { ...o.tTerm, x: hx, y: midY - Z.termH / 2 };
  terms.push(tPos);
  hx += o.tTerm.w + gap;
  let emb = null;
  const timePath = o.header.find((p) => hasRole(ix.blockByPath.get(p).category, 'timestep')) ?? o.header[0];
  const labelPath = o.header.find((p) => p !== timePath);
  if (timePath) {
    const p = { box: boxes.get(timePath), x: hx, y: headerTop };
    place.set(timePath, p);
    edges.push({ pts: [[tPos.x + tPos.w, portY(p)], [p.x, portY(p)]], cls: 'emb', head: true, from: ':t', to: timePath });
    hx += p.box.w;
    emb = { x: p.x + p.box.w / 2, y: p.y + p.box.h, from: timePath };
    if (labelPath) {
      const cx = hx + gap + Z.opR;
      const cy = portY(p);
      ops.push({ shape: 'circle', cx, cy, r: Z.opR, sym: '+', label: '', id: ':add_label' });
      edges.push({ pts: [[hx, cy], [cx - Z.opR, cy]], cls: 'emb', head: true, from: timePath, to: ':add_label' });
      const lp = { box: boxes.get(labelPath), x: cx + Z.opR + gap, y: headerTop };
      place.set(labelPath, lp);
      edges.push({ pts: [[lp.x, portY(lp)], [cx + Z.opR, cy]], cls: 'emb', head: true, from: labelPath, to: ':add_label' });
      if (o.yTerm) {
        const yPos = { ...o.yTerm, x: lp.x + lp.box.w + gap, y: cy - Z.termH / 2 };
        terms.push(yPos);
        edges.push({ pts: [[yPos.x, cy], [lp.x + lp.box.w, cy]], cls: 'emb', head: true, from: ':y', to: labelPath });
      }
      emb = { x: cx, y: cy + Z.opR, from: ':add_label' };
    }
  }
  const out = place.get(o.outPath ?? '');
  let rightX = sc.W - Z.margin;
  if (out) {
    // out rises from the output head, right of its middle.
    const oPos = { ...o.outTerm, x: out.x + out.box.w - o.outTerm.w, y: midY - Z.ioH / 2 };
    terms.push(oPos);
    const ax = out.x + out.box.w - Math.min(18, o.outTerm.w / 2);
    edges.push({ pts: [[ax, out.y], [ax, oPos.y + oPos.h]], cls: 'flow', head: true, from: o.outPath, to: ':out' });
    rightX = oPos.x - 3 * gap;
  }
  let ctx = null;
  if (o.ctxTerm) {
    const cPos = { ...o.ctxTerm, x: rightX - o.ctxTerm.w, y: midY - Z.termH / 2 };
    terms.push(cPos);
    ctx = { x: cPos.x + cPos.w, y: cPos.y + Z.termH / 2 };
  }
  return { emb, ctx };
}

/** Every level's row label, between the two arms (the centre gap is made wide enough for it). */
function labelRows(sc, input, { down, up, levels }) {
  const out = [];
  for (let L = 0; L < levels; L += 1) {
    const a = sc.place.get(down[L].at(-1));
    const b = sc.place.get(up[L][0]);
    if (!a || !b) continue;
    const x = (a.x + a.box.w + TURN_OUT + b.x - TURN_IN) / 2;
    out.push({ x, y: a.y + Z.portDy - 3, text: rowLabelText(input, L), sub: `level ${L}` });
  }
  return out;
}

/** The main flow: every non-embedding block in execution order; a turn to another row runs on its own track. */
function flowEdges(sc, ix, g) {
  const { place, rowOf, edges } = sc;
  const seq = ix.blocks.filter((b) => b.stage !== 'embed' && place.has(b.path)).map((b) => b.path);
  for (let i = 1; i < seq.length; i += 1) {
    const [from, to] = [seq[i - 1], seq[i]];
    const a = place.get(from);
    const b = place.get(to);
    const [ra, rb] = [rowOf.get(from), rowOf.get(to)];
    const ay = portY(a);
    const by = portY(b);
    if (ra === rb && b.x >= a.x + a.box.w) {
      edges.push({ pts: [[a.x + a.box.w, ay], [b.x, by]], cls: 'flow', head: true, from, to });
      continue;
    }
    const lower = Math.max(ra, rb);
    const ty = rb > ra ? g.trackDown(lower) : g.trackUp(lower);
    const xa = a.x + a.box.w + TURN_OUT;
    const xb = b.x - TURN_IN;
    edges.push({ pts: [[a.x + a.box.w, ay], [xa, ay], [xa, ty], [xb, ty], [xb, by], [b.x, by]], cls: 'flow', head: true, from, to });
  }
}

/** Skip connections: lanes nest, the widest span on top, so lines never cross each other. */
function skipLanes(sc, skipsInto, g, levels) {
  const { place, rowOf } = sc;
  for (let L = 0; L < levels; L += 1) {
    const list = skipsInto[L]
      .filter((s) => place.has(s.from) && place.has(s.to))
      .map((s) => {
        const a = place.get(s.from);
        const b = place.get(s.to);
        return { s, a, b, sx: a.x + a.box.w / 2, tx: b.x + b.box.w / 2 };
      })
      .sort((p, q) => Math.abs(q.tx - q.sx) - Math.abs(p.tx - p.sx));
    list.forEach(({ s, a, b, sx, tx }, k) => {
      const ly = g.laneY(L, k);
      const sy = rowOf.get(s.from) === L ? a.y : a.y + a.box.h;
      sc.skips.push({
        from: s.from,
        to: s.to,
        pts: [[sx, sy], [sx, ly], [tx, ly], [tx, b.y]],
        label: shapeText(s.shape),
        // Near its source, so the labels of nested lanes (which share a middle) sit apart.
        lx: Math.min(sx, tx) + 6,
        ly: ly - 2,
        title: `skip ${s.from} → ${s.to}: ${shapeText(s.shape)}, concatenated to ${shapeText(s.concat_shape)}`,
      });
    });
  }
}

/** The time embedding: one path per block that reads it, from the header down the left margin, along the bus lane
 * of the block's row and into its top. Paths of one bus overlap where they share the trunk. */
function embBus(sc, ix, src, g) {
  const trunkX = Z.margin - 14;
  for (const [path, use] of ix.uses) {
    if (!use.emb || !sc.place.has(path) || ix.blockByPath.get(path).stage === 'embed') continue;
    const q = sc.place.get(path);
    const L = sc.rowOf.get(path);
    const by = g.embY(L);
    const dx = q.x + 14;
    const pts = L === 0
      ? [[src.x, src.y], [src.x, by], [dx, by], [dx, q.y]]
      : [[src.x, src.y], [src.x, g.embY(0)], [trunkX, g.embY(0)], [trunkX, by], [dx, by], [dx, q.y]];
    sc.buses.push({ pts, cls: 'emb', head: true, from: src.from, to: path });
    sc.dots.push({ cx: dx, cy: by, cls: 'emb' });
  }
}

/** The context: one path per block that reads it, from the context terminal down the right margin. */
function ctxBus(sc, ix, src, g) {
  const trunkX = sc.W - Z.margin + 14;
  for (const [path, use] of ix.uses) {
    if (!use.ctx || !sc.place.has(path)) continue;
    const q = sc.place.get(path);
    const by = g.ctxY(sc.rowOf.get(path));
    const dx = q.x + 26;
    sc.buses.push({ pts: [[src.x, src.y], [trunkX, src.y], [trunkX, by], [dx, by], [dx, q.y]], cls: 'ctx', head: true, from: ':context', to: path });
    sc.dots.push({ cx: dx, cy: by, cls: 'ctx' });
  }
}

/**
 * Row heights that make two scenes line up by resolution: a row of one U beside the row of the other U that works
 * at the same latent size (sd1's 64×64 level 0 beside SDXL's 64×64 level 1), an empty band where one model has a
 * resolution the other lacks, and the two middle rows side by side at the bottom. Takes both scenes' `geometry`,
 * returns one `align` argument for layoutScene per scene.
 */
export function alignScenes(ga, gb) {
  const bands = [...new Set([...ga.res, ...gb.res])].sort((p, q) => q - p);
  const size = bands.map((r) => {
    const at = [ga, gb].map((g) => g.res.indexOf(r));
    return {
      channel: Math.max(...[ga, gb].map((g, i) => (at[i] >= 0 ? g.channel[at[i]] : 0))),
      row: Math.max(...[ga, gb].map((g, i) => (at[i] >= 0 ? g.row[at[i]] : 0))),
    };
  });
  const midChannel = Math.max(ga.channel[ga.levels], gb.channel[gb.levels]);
  const midRow = Math.max(ga.row[ga.levels], gb.row[gb.levels]);
  const headerH = Math.max(ga.headerH, gb.headerH);
  const forOne = (g) => {
    const before = [];
    let k = 0; // the next band
    for (let L = 0; L < g.levels; L += 1) {
      let gap = 0;
      while (bands[k] !== g.res[L]) {
        gap += size[k].channel + size[k].row;
        k += 1;
      }
      before[L] = gap;
      k += 1;
    }
    let beforeMid = 0;
    for (; k < bands.length; k += 1) beforeMid += size[k].channel + size[k].row;
    return {
      headerH,
      before,
      beforeMid,
      channel: [...g.res.map((r) => size[bands.indexOf(r)].channel), midChannel],
      row: [...g.res.map((r) => size[bands.indexOf(r)].row), midRow],
    };
  };
  return [forOne(ga), forOne(gb)];
}

/** The block of scene B that stands where `path` stands in scene A: the same stage, the same latent size and the
 * same place in its row (the middle block for the middle block, the embeddings and the output by category). */
export function counterpartOf(ixA, ixB, path, ga, gb) {
  const a = ixA.blockByPath.get(path);
  if (!a) return null;
  if (a.level == null || a.stage === 'mid' || a.stage === 'out') {
    return ixB.blocks.find((b) => b.category === a.category)?.path ?? null;
  }
  const level = gb.res.indexOf(ga.res[a.level]);
  if (level < 0) return null;
  const same = (b) => b.stage === a.stage && b.level === level && b.position === a.position && b.category === a.category;
  return ixB.blocks.find(same)?.path ?? null;
}

/** Where `path` (or its nearest drawn ancestor) sits in a scene, in scene units: {x, y, w, h, cardH, path}. */
export function boxRect(scene, path) {
  const within = (p) => path === p || path.startsWith(`${p}.`);
  const pl = scene.tops.find((t) => within(t.box.path));
  if (!pl) return null;
  let { box, x, y } = pl;
  while (box.path !== path && box.inner) {
    const next = box.inner.placements.find((p) => path === p.box.path || path.startsWith(`${p.box.path}.`));
    if (!next) break;
    x += Z.padX + next.x;
    y += box.cardH + next.y;
    box = next.box;
  }
  return { x, y, w: box.w, h: box.h, cardH: box.cardH, path: box.path };
}
