// compare.js — two models side by side: both U's, drawn by two more diagram.js instances and lined up level by
// level (layout.alignScenes), and the tables of GET /api/compare (params and FLOPs per stage, per level and per
// category) with the structural differences in words, from the comparison's typed block make-up (no text parsed).
// The two U's line up by resolution (a row beside the row of the other model at the same latent size), share one
// zoom and scroll together; clicking a block opens it and its counterpart, the block of the other model at the
// same stage, latent size and place in its row.

import { STAGE_WORDS } from './config.js';
import { createDiagram } from './diagram.js';
import { compact, exact } from './format.js';
import { alignScenes, counterpartOf, createMemo, flowOf, indexTrace, layoutScene } from './layout.js';
import { h } from './dom.js';
import { KINDS, hasRole } from './kinds.js';

const MIN_TITLE_PX = 9; // titles smaller than this cannot be read on a 720p projector from the back of a room

/** The latent size at a level: "32×32". */
function latentAt(input, level) {
  const s = input?.sample_size;
  return s && level != null ? s.map((v) => v / 2 ** level).join('×') : '';
}

/** A row's place in words, from its {stage, level} (the API's; the key is only its name). */
function whereWords({ stage, level }, cmp) {
  if (level == null) return STAGE_WORDS[stage]?.row ?? stage;
  const sizes = [latentAt(cmp.a.input, level), latentAt(cmp.b.input, level)];
  const res = sizes[0] === sizes[1] ? sizes[0] : sizes.filter(Boolean).join(' / ');
  return `${STAGE_WORDS[stage]?.row ?? stage}, level ${level}${res ? ` (latent ${res})` : ''}`;
}

const parts = (blocks) => (blocks ?? []).flatMap((b) => b.parts);
const hasAttention = (blocks) => parts(blocks).some((p) => hasRole(p.category, 'attention') || hasRole(p.category, 'stacked_attention'));
/** The most transformer blocks stacked in one SpatialTransformer of a level (0: none). */
const depthOf = (blocks) => Math.max(0, ...parts(blocks).map((p) => (hasRole(p.category, 'stacked_attention') ? p.depth ?? 1 : 0)));
/** One block's make-up in words: "ResBlock + SpatialTransformer ×10". */
const makeupWords = (block) => block.parts.map((p) => `${p.kind}${p.depth > 1 ? ` ×${p.depth}` : ''}`).join(' + ');
const ratio = (a, b) => (a && b != null ? b / a : null);
const times = (r) => (r == null ? '—' : r >= 10 ? `×${r.toFixed(0)}` : `×${r.toFixed(r >= 1 ? 1 : 2)}`);

/**
 * The structural differences in words: a few headline sentences (levels, attention at the highest resolution,
 * stacked transformer blocks, size), then one line per level that differs. Pure: compare JSON + names in.
 */
export function describeDifferences(cmp, nameA, nameB) {
  const headline = [];
  const levelsOf = (side) => new Set(cmp.by_level.filter((r) => r[side] && r.stage === 'down').map((r) => r.level)).size;
  const la = levelsOf('a');
  const lb = levelsOf('b');
  if (la !== lb) {
    const deep = la > lb ? [nameA, la, cmp.a.input] : [nameB, lb, cmp.b.input];
    const shallow = la > lb ? [nameB, lb, cmp.b.input] : [nameA, la, cmp.a.input];
    headline.push(`${deep[0]} has ${deep[1]} resolution levels and ${shallow[0]} ${shallow[1]}: the lowest latent is `
      + `${latentAt(deep[2], deep[1] - 1)} in ${deep[0]} and ${latentAt(shallow[2], shallow[1] - 1)} in ${shallow[0]}.`);
  }
  // Attention where one model has it and the other does not (down levels; the up side mirrors them).
  for (let L = 0; L < Math.min(la, lb); L += 1) {
    const d = cmp.differences.find((x) => x.stage === 'down' && x.level === L);
    if (!d) continue;
    const [ha, hb] = [hasAttention(d.a), hasAttention(d.b)];
    if (ha === hb) continue;
    const [without, withIt] = ha ? [nameB, nameA] : [nameA, nameB];
    const where = L === 0 ? 'the highest resolution' : `level ${L}`;
    headline.push(`${without} drops attention at ${where} (level ${L}, latent ${latentAt((ha ? cmp.b : cmp.a).input, L)}); `
      + `${withIt} has a transformer there.`);
  }
  // How deep the transformers stack where the levels differ, and whether that is at the lowest resolution.
  const stacks = [];
  for (const d of cmp.differences) {
    const [xa, xb] = [depthOf(d.a), depthOf(d.b)];
    if (xa !== xb && Math.max(xa, xb) > 1) stacks.push({ key: d.where, stage: d.stage, level: d.level, xa, xb });
  }
  if (stacks.length) {
    const top = Math.max(...stacks.map((x) => Math.max(x.xa, x.xb)));
    const at = stacks.filter((x) => Math.max(x.xa, x.xb) === top);
    const bigIsB = at[0].xb === top;
    const [big, small, levels] = bigIsB ? [nameB, nameA, lb] : [nameA, nameB, la];
    const lowest = at.some((x) => x.stage === 'mid' || x.level === levels - 1);
    const other = Math.max(...at.map((x) => (bigIsB ? x.xa : x.xb)));
    headline.push(`${big} stacks ${top} transformer blocks in each SpatialTransformer ${lowest ? 'at the lowest resolution' : 'at'} `
      + `(${at.map((x) => x.key).join(', ')}); ${small} has ${other ? `${other} there` : 'none there'}.`);
  }
  const [ta, tb] = [cmp.a.totals, cmp.b.totals];
  const x = (r) => (r == null ? 'an unknown multiple of' : `${r.toFixed(r >= 10 ? 0 : r >= 1 ? 1 : 2)}×`);
  headline.push(`${nameB} has ${x(ratio(ta.params, tb.params))} the parameters of ${nameA} (${compact(tb.params)} vs `
    + `${compact(ta.params)}) and ${x(ratio(ta.flops, tb.flops))} the FLOPs per step (${compact(tb.flops)} vs `
    + `${compact(ta.flops)}, each at ${cmp.a.input?.image_size?.[0] === cmp.b.input?.image_size?.[0] ? 'the same size' : 'its own size'}).`);
  const rows = cmp.differences.map((d) => ({
    where: d.where,
    label: whereWords(d, cmp),
    a: d.a ? d.a.map(makeupWords).join(' · ') : 'no such level',
    b: d.b ? d.b.map(makeupWords).join(' · ') : 'no such level',
  }));
  return { headline, rows };
}

function numCell(value, field) {
  return h('td', { dataset: { field, value: value ?? '' }, title: value == null ? null : exact(value) }, compact(value));
}

function table(kind, caption, rows, nameA, nameB, cols) {
  const head = h('tr', {}, h('th', { scope: 'col' }, caption));
  for (const c of cols) {
    head.append(h('th', { scope: 'col' }, `${nameA} ${c.label}`), h('th', { scope: 'col' }, `${nameB} ${c.label}`),
      h('th', { scope: 'col', class: 'ratio' }, `${nameB} / ${nameA}`));
  }
  const body = rows.map((r) => {
    const tr = h('tr', { dataset: { key: r.key } }, h('th', { scope: 'row' }, r.label));
    for (const c of cols) {
      const a = r.a?.[c.key] ?? null;
      const b = r.b?.[c.key] ?? null;
      tr.append(numCell(a, `a-${c.key}`), numCell(b, `b-${c.key}`), h('td', { class: 'ratio' }, a && b != null ? times(b / a) : '—'));
    }
    return tr;
  });
  return h('table', { class: 'diff-table', dataset: { table: kind } }, h('thead', {}, head), h('tbody', {}, body));
}

/**
 * The compare section. root holds the markup of templates/index.html (#compare); hooks: getTrace(preset, size)
 * → a trace (cached by the caller), getComparison({a, b, imageSize}) → the /api/compare JSON,
 * onState(s): 'loading' | 'true' | 'error' (also announced as status "compare"); decorate(root, sides, cmp,
 * names) after each draw.
 */
export function createCompare(root, { getTrace, getComparison, onState, decorate = null }) {
  const hosts = [root.querySelector('[data-side="a"] .compare-diagram'), root.querySelector('[data-side="b"] .compare-diagram')];
  const titles = [root.querySelector('[data-side="a"] .compare-title'), root.querySelector('[data-side="b"] .compare-title')];
  const tables = root.querySelector('.compare-tables');
  const words = root.querySelector('.compare-differences');
  const status = root.querySelector('.compare-status');
  const sides = [0, 1].map((i) => ({ ix: null, memo: null, expanded: new Set(), selection: null, diagram: null, i }));
  let token = 0;
  let fitted = false;
  let shown = null; // {cmp, names} for decorate (variant_compare.js marks removed blocks after each draw)

  sides.forEach((side) => {
    side.diagram = createDiagram(hosts[side.i], {
      label: `Compared UNet ${side.i ? 'B' : 'A'}: click a block to open it`,
      onActivate(path) {
        if (!side.ix || !flowOf(side.ix, path).boxPaths.length) return select(side, path);
        const open = !side.expanded.has(path);
        const other = sides[1 - side.i];
        const twin = counterpart(side, other, path);
        for (const [s, p] of [[side, path], [other, twin]]) {
          if (!p) continue;
          if (open) s.expanded.add(p);
          else s.expanded.delete(p);
          select(s, p);
        }
        render();
      },
      onSelect: (path) => select(side, path),
    });
  });

  /** The other model's block at the same place of the U (for a module inside a block: the same module inside the
   * counterpart block, when it has one), or null. */
  function counterpart(from, to, path) {
    if (!to.ix || !from.scene || !to.scene) return null;
    const top = from.ix.nodes.get(path)?.block;
    const twinTop = top && counterpartOf(from.ix, to.ix, top, from.scene.geometry, to.scene.geometry);
    if (!twinTop) return null;
    const twin = twinTop + path.slice(top.length);
    return to.ix.nodes.has(twin) && flowOf(to.ix, twin).boxPaths.length ? twin : null;
  }

  function select(side, path) {
    side.selection = path;
    side.diagram.highlight(path);
  }

  // Both pan together, so the rows stay side by side.
  let syncing = false;
  hosts.forEach((host, i) => {
    host.addEventListener('scroll', () => {
      if (syncing) return;
      syncing = true;
      hosts[1 - i].scrollTop = host.scrollTop;
      hosts[1 - i].scrollLeft = host.scrollLeft;
      requestAnimationFrame(() => {
        syncing = false;
      });
    });
  });

  function render() {
    if (!sides[0].ix || !sides[1].ix) return;
    const natural = sides.map((s) => layoutScene(s.ix, s.expanded, s.memo));
    const align = alignScenes(natural[0].geometry, natural[1].geometry);
    const scenes = sides.map((s, i) => layoutScene(s.ix, s.expanded, s.memo, align[i]));
    sides.forEach((s, i) => {
      s.scene = natural[i];
      s.diagram.render(scenes[i], s.ix, { metric: 'flops', selection: s.selection });
    });
    if (!fitted) {
      // Side by side first; where that would draw the titles under MIN_TITLE_PX (SD 1.x beside SDXL at 1280×720:
      // about 5 px) the U's go one above the other, unless the reader chose the layout.
      if (!layoutChosen) {
        setStacked(false);
        const px = titlePx(fitZoom(scenes));
        setStacked(px < MIN_TITLE_PX);
        why.textContent = px < MIN_TITLE_PX
          ? `One above the other: side by side, the titles would be ${px.toFixed(1)} px at this window, too small to read on a projector.`
          : '';
        why.hidden = !why.textContent;
      }
      setZoom(fitZoom(scenes));
      fitted = true;
    }
    // As tall as the taller U needs (scrollbars aside), up to the room above.
    const room = stacked.checked ? window.innerHeight - 56 : window.innerHeight * 0.75;
    const need = Math.max(...scenes.map((sc) => sc.h)) * sides[0].diagram.zoom + 24;
    for (const host of hosts) host.style.height = `${Math.round(Math.min(need, room))}px`;
    if (shown) decorate?.(root, sides, shown.cmp, shown.names);
  }

  // "One above the other": each U twice as wide as side by side (issue 24: 44% side by side at 1280×720). The
  // page chooses it where side by side is too small to read; a reader's own choice stands from then on.
  const stacked = root.querySelector('.compare-stacked');
  const why = root.querySelector('.compare-why');
  let layoutChosen = false;
  function setStacked(on) {
    stacked.checked = on;
    root.classList.toggle('stacked', on);
  }
  stacked.addEventListener('change', () => {
    layoutChosen = true;
    why.hidden = true;
    setStacked(stacked.checked);
    fitted = false;
    render();
  });

  /** The zoom that fits both U's: side by side each view is up to 75% of the window high; stacked, one U at a
   * time fills the window but for its title, and has the whole width. One zoom for both, so a level is as tall on
   * the left as on the right. */
  function fitZoom(scenes) {
    const tall = stacked.checked ? window.innerHeight - 56 - 24 : Infinity;
    return Math.min(1, ...scenes.map((sc, i) => Math.min((hosts[i].clientWidth - 4) / sc.w, tall / sc.h)));
  }

  /** The CSS px a top-level card's title renders at, at zoom `z`. */
  function titlePx(z) {
    const t = hosts[0].querySelector('.layer-boxes > g.box > .card .t1');
    return (t ? parseFloat(getComputedStyle(t).fontSize) : 11.5) * z;
  }

  const zoomLabel = root.querySelector('.compare-zoom-level');
  function setZoom(z) {
    for (const s of sides) s.diagram.setZoom(z);
    if (zoomLabel) zoomLabel.textContent = `${Math.round(sides[0].diagram.zoom * 100)}%`;
  }
  root.querySelector('.compare-zoom-in')?.addEventListener('click', () => setZoom(sides[0].diagram.zoom * 1.2));
  root.querySelector('.compare-zoom-out')?.addEventListener('click', () => setZoom(sides[0].diagram.zoom / 1.2));

  function showTables(cmp, nameA, nameB) {
    const stageRows = cmp.by_stage.map((r) => ({ ...r, label: STAGE_WORDS[r.key]?.row ?? r.key }));
    const levelRows = cmp.by_level.map((r) => ({ ...r, label: whereWords(r, cmp) }));
    const kindRows = cmp.by_kind.map((r) => ({ ...r, label: KINDS[r.key]?.words ?? r.key }));
    const money = [{ key: 'params', label: 'params' }, { key: 'flops', label: 'FLOPs' }];
    tables.replaceChildren(
      h('h3', {}, 'Per stage'),
      table('stage', 'Stage', stageRows, nameA, nameB, [...money, { key: 'attention_flops', label: 'attn FLOPs' }]),
      h('h3', {}, 'Per level'),
      table('level', 'Level', levelRows, nameA, nameB, [...money, { key: 'attention_flops', label: 'attn FLOPs' }]),
      h('h3', {}, 'Per block kind'),
      h('p', { class: 'muted' }, 'Kinds nest: a transformer block sits inside a SpatialTransformer, attention inside a transformer block.'),
      table('kind', 'Kind', kindRows, nameA, nameB, [{ key: 'count', label: 'count' }, ...money]),
    );
    const { headline, rows } = describeDifferences(cmp, nameA, nameB);
    const list = h('ul', { class: 'headline' }, headline.map((s) => h('li', {}, s)));
    const diffs = rows.length
      ? h('table', { class: 'diff-words' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Where'), h('th', { scope: 'col' }, nameA), h('th', { scope: 'col' }, nameB))),
        h('tbody', {}, rows.map((r) => h('tr', { dataset: { where: r.where } }, h('th', { scope: 'row' }, r.label), h('td', {}, r.a), h('td', {}, r.b)))))
      : h('p', {}, 'The blocks are the same at every level.');
    words.replaceChildren(h('h3', {}, 'Structural differences'), list, diffs);
  }

  /** Show preset `a` beside preset `b`, both at imageSize (pixels), or each at its reference size (null). */
  async function show({ a, b, imageSize }) {
    const mine = ++token;
    root.hidden = false;
    onState('loading');
    status.textContent = `Tracing ${b}…`;
    try {
      const [ta, tb, cmp] = await Promise.all([
        getTrace(a, imageSize),
        getTrace(b, imageSize),
        getComparison({ a, b, imageSize }),
      ]);
      if (mine !== token) return;
      const fresh = sides.map((s, i) => s.ix?.trace !== [ta, tb][i]);
      [ta, tb].forEach((t, i) => {
        const s = sides[i];
        if (!fresh[i]) return;
        s.ix = indexTrace(t);
        s.memo = createMemo();
        s.expanded = new Set();
        s.selection = null;
      });
      fitted = fitted && !fresh.some(Boolean);
      const size = (t) => (t.input?.image_size ? `${t.input.image_size[0]} px` : `latent ${t.input?.sample_size?.join('×')}`);
      titles[0].textContent = `${a} at ${size(ta)}`;
      titles[1].textContent = `${b} at ${size(tb)}`;
      status.textContent = '';
      shown = { cmp, names: [a, b] };
      render();
      showTables(cmp, a, b);
      onState('true');
    } catch (err) {
      if (mine !== token) return;
      status.textContent = `Could not compare: ${err.message}`;
      onState('error');
    }
  }

  function hide() {
    token += 1;
    root.hidden = true;
    onState('off');
  }

  return { show, hide, sides };
}
