// lora.js — "Open LoRA" (issue 14): reads a LoRA file's safetensors header in the browser (safetensors-header.js:
// the 8-byte length, then the JSON; the weights are never read or sent), plus the alpha scalars the
// header points to (a few bytes each: kohya keeps alpha in the tensor data, and the scale alpha / rank is only
// true with them). POST /api/lora/detect names the format, the base family and every patched module; the U is
// painted by rank or by parameters added, and the "LoRA" panel gives the totals, the block IDs, the text-encoder
// part and the tensors that match nothing. A file for another family than the model on screen says so and offers
// to switch; a file that is no LoRA shows the server's reason.
//
// Everything from the file (names, metadata, the file name) goes into the page as text only.

import { HeaderError, readHeader } from './safetensors-header.js';
import { OVERLAY_DARK_FROM, rampColor } from './config.js';
import { compact, exact } from './format.js';
import { h, row } from './dom.js';
import { errorLines, panelHead, wirePicker } from './file-panel.js';
import { keyList } from './key-list.js';

const LIST_LIMIT = 10;
/** At most this many alpha scalars are read (each a small File.slice); past it the server's metadata rule stands. */
const MAX_ALPHAS = 20000;

/** A scalar of a safetensors dtype, little-endian, or null for a dtype the page does not decode. */
export function scalarOf(bytes, dtype) {
  const view = new DataView(bytes);
  if (dtype === 'F32' && bytes.byteLength >= 4) return view.getFloat32(0, true);
  if (dtype === 'F64' && bytes.byteLength >= 8) return view.getFloat64(0, true);
  if (dtype === 'BF16' && bytes.byteLength >= 2) {
    const f = new DataView(new ArrayBuffer(4));
    f.setUint16(0, 0, true);
    f.setUint16(2, view.getUint16(0, true), true);
    return f.getFloat32(0, true);
  }
  if (dtype === 'F16' && bytes.byteLength >= 2) {
    const u = view.getUint16(0, true);
    const sign = u & 0x8000 ? -1 : 1;
    const exp = (u >> 10) & 0x1f;
    const frac = u & 0x3ff;
    if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
    if (exp === 31) return frac ? NaN : sign * Infinity;
    return sign * 2 ** (exp - 15) * (1 + frac / 1024);
  }
  return null;
}

/**
 * What the page sends for a LoRA file: {body, alphas} where body is {header, alphas} when the header parses and
 * names alpha scalars (their values read from the file), else the header's text as it is (the server says what
 * is wrong with it). Refuses a file that cannot be safetensors with a HeaderError.
 */
export async function readLoraBody(file) {
  const { text, dataStart: start } = await readHeader(file);
  let header;
  try {
    header = JSON.parse(text);
  } catch {
    return { body: text, alphas: 0 };
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) return { body: text, alphas: 0 };
  const wanted = Object.entries(header).filter(
    ([name, t]) => name.endsWith('.alpha') && t && Array.isArray(t.data_offsets) && (t.shape ?? []).length <= 1,
  );
  if (!wanted.length || wanted.length > MAX_ALPHAS) return { body: text, alphas: 0 };
  const alphas = {};
  await Promise.all(
    wanted.map(async ([name, t]) => {
      const [a, b] = t.data_offsets.map(Number);
      if (!(b > a) || start + b > file.size) return;
      const value = scalarOf(await file.slice(start + a, start + b).arrayBuffer(), t.dtype);
      if (value != null && Number.isFinite(value)) alphas[name] = value;
    }),
  );
  if (!Object.keys(alphas).length) return { body: text, alphas: 0 };
  return { body: { header, alphas }, alphas: Object.keys(alphas).length };
}

/** Per path, what the LoRA adds in and below it: {params, modules, rankMin, rankMax} (the server's modules, summed
 * up the module tree; a top-level block's figures are the server's own unet_blocks). */
export function loraTotals(det) {
  const out = new Map();
  const add = (path, m) => {
    const t = out.get(path) ?? { params: 0, modules: 0, rankMin: null, rankMax: null, flops: 0 };
    t.params += m.params;
    t.modules += 1;
    t.flops += m.flops ?? 0;
    if (m.rank != null) {
      t.rankMin = t.rankMin == null ? m.rank : Math.min(t.rankMin, m.rank);
      t.rankMax = t.rankMax == null ? m.rank : Math.max(t.rankMax, m.rank);
    }
    out.set(path, t);
  };
  for (const m of det.modules) {
    const parts = m.path.split('.');
    for (let i = parts.length; i > 0; i -= 1) {
      const p = parts.slice(0, i).join('.');
      add(p, m);
      if (p === m.block) break;
    }
  }
  for (const b of det.unet_blocks) {
    if (!b.modules) continue;
    out.set(b.path, { ...(out.get(b.path) ?? {}), params: b.params, modules: b.modules, rankMin: b.rank_min, rankMax: b.rank_max, flops: b.flops });
  }
  return out;
}

export function rankText(min, max) {
  if (min == null) return 'full';
  return min === max ? `r${min}` : `r${min}–${max}`;
}

/** The card painter: by rank ('lora-rank') or by parameters added ('lora-params'); untouched cards keep theirs. */
export function loraPainter(det, mode) {
  const totals = loraTotals(det);
  const maxRank = det.rank_max ?? 1;
  const maxParams = Math.max(1, ...det.unet_blocks.map((b) => b.params));
  return (node) => {
    const t = totals.get(node.path);
    if (!t || !t.modules) return null;
    let pos;
    let badge;
    if (mode === 'lora-params') {
      pos = 0.15 + 0.85 * Math.min(1, Math.sqrt(t.params / maxParams));
      badge = `+${compact(t.params)}`;
    } else {
      pos = t.rankMax == null ? 1 : 0.15 + 0.85 * Math.min(1, t.rankMax / maxRank);
      badge = rankText(t.rankMin, t.rankMax);
    }
    return { fill: rampColor(pos), dark: pos >= OVERLAY_DARK_FROM, badge };
  };
}

/** The legend of the LoRA overlay: what the colour and the number on each card mean. */
export function loraLegend(det, mode) {
  const ramp = h('span', { class: 'ramp' });
  ramp.style.background = `linear-gradient(to right, ${[0.15, 0.4, 0.7, 1].map(rampColor).join(', ')})`;
  const byRank = mode !== 'lora-params';
  const max = byRank ? (det.rank_max != null ? `r${det.rank_max}` : 'full') : compact(Math.max(0, ...det.unet_blocks.map((b) => b.params)));
  const min = byRank ? (det.rank_min != null ? `r${det.rank_min}` : 'full') : '0';
  return [
    h('span', { class: 'ramp-title' }, byRank ? 'LoRA rank (the number: rank of the modules inside):' : 'LoRA parameters added (square-root scale):'),
    h('span', { class: 'ramp-wrap' }, ramp, h('span', { class: 'ramp-ticks' }, h('span', {}, min), h('span', {}, max))),
    h('span', { dataset: { field: 'lora-totals' } }, `${det.format_title.split(':')[0]}, ${det.family_title ?? det.preset}: +${compact(det.params_added)} params`
      + `${flopsWords(det) ? `, +${flopsWords(det)}` : ''}`),
    h('span', { class: 'muted' }, 'white cards: not patched'),
  ];
}

/** The FLOPs the LoRA adds, in words: "5.6 G per step at 512×512 px". */
function flopsWords(det) {
  if (det.flops_added == null || !det.flops) return null;
  const size = det.flops.image_size ? `${det.flops.image_size.join('×')} px` : `latent ${det.flops.sample_size.join('×')}`;
  return `${compact(det.flops_added)} FLOPs per step at ${size}`;
}

/** The panel's one line: format, family, ranks, what it adds. */
function headline(det, ctx) {
  const flops = ctx.flops === 'pending' ? 'FLOPs: counting…' : flopsWords(det);
  return [
    h('strong', {}, det.format), ` · ${det.family_title ?? det.preset} · ${rankText(det.rank_min, det.rank_max)} · `,
    `${det.modules.length} UNet modules in ${det.unet_blocks.filter((b) => b.modules).length} blocks · `,
    h('strong', {}, `+${compact(det.params_added)} params`), flops ? ` · +${flops}` : '',
    det.text_encoder.modules.length ? ` · text encoder: ${det.text_encoder.modules.length} modules` : '',
    det.unmatched.length ? h('span', { class: 'lora-unmatched' }, ` · ${det.unmatched.length} tensors match nothing`) : '',
  ];
}

/**
 * The panel's content for a detection. ctx: {title (the model on screen), matches (the LoRA is drawn on it),
 * flops ('pending' while the FLOPs are counted)}; onSwitch(preset) opens the LoRA's own model, onSelect(path) a
 * block on the U.
 */
export function loraView(det, fileName, ctx, { onSwitch, onSelect }) {
  const head = [];
  const parts = [];
  if (!ctx.matches) {
    const btn = h('button', { type: 'button', class: 'primary', dataset: { switch: det.preset } }, `Show ${det.preset}`);
    btn.addEventListener('click', () => onSwitch(det.preset));
    head.push(
      h(
        'p',
        { class: 'lora-mismatch', role: 'alert', dataset: { field: 'mismatch' } },
        `This LoRA is for ${det.family_title ?? det.preset}; the U shows ${ctx.title}. Its modules are drawn on ${det.preset} only. `,
        btn,
      ),
    );
  }
  const dl = h('dl', { class: 'facts ckpt-facts lora-facts' });
  dl.append(...row('File', 'file', h('code', {}, fileName)));
  dl.append(...row('Format', 'format', h('strong', {}, det.format), ` — ${det.format_title}`));
  dl.append(...row('Family', 'family', h('strong', {}, det.family_title ?? '—'), ` (matched against ${det.preset})`));
  if (det.family_evidence.length) {
    dl.append(...row('Why', 'evidence', h('ul', { class: 'plain' }, det.family_evidence.map((e) => h('li', {}, e)))));
  }
  dl.append(...row('Keys', 'keys', `${det.key_style} keys${det.spelling ? `, ${det.spelling} spelling` : ''}`));
  const ranks = Object.entries(det.ranks).map(([r, n]) => `r${r} × ${n}`);
  dl.append(...row('Ranks', 'ranks', ranks.length ? ranks.join(', ') : '—', Object.keys(det.algos).length ? ` · ${Object.entries(det.algos).map(([a, n]) => `${a} ${n}`).join(', ')}` : ''));
  const sources = {};
  for (const m of [...det.modules, ...det.text_encoder.modules]) sources[m.alpha_source] = (sources[m.alpha_source] ?? 0) + 1;
  const alphaWords = { tensor: 'read from the file', metadata: "kohya's rule over the metadata", none: 'none in the file (scale 1)', unknown: 'unknown' };
  dl.append(...row('Alpha', 'alpha', Object.entries(sources).map(([s, n]) => `${alphaWords[s] ?? s} (${n})`).join(', ') || '—'));
  dl.append(...row('UNet params', 'unet-params', h('strong', {}, exact(det.unet_params)), ` (${compact(det.unet_params)}) in ${det.modules.length} modules`));
  dl.append(...row('Text encoder', 'te-params', `${exact(det.text_encoder_params)} params in ${det.text_encoder.modules.length} modules`));
  dl.append(...row('Params added', 'params-added', h('strong', {}, exact(det.params_added)), ` (${compact(det.params_added)})`));
  let flops;
  if (ctx.flops === 'pending') flops = h('span', { class: 'muted' }, 'counting at the current size…');
  else if (flopsWords(det)) {
    flops = [h('strong', {}, flopsWords(det)), ` on ${det.flops.preset}, batch ${det.flops.batch} (${det.flops.counted})`];
  } else flops = '—';
  dl.append(...row('FLOPs added', 'flops-added', flops));
  const ids = det.block_ids.filter((id) => id !== 'BASE');
  dl.append(
    ...row(
      'Block IDs',
      'block-ids',
      h('code', {}, det.block_ids.join(',') || '—'),
      det.id_list ? ` — fits the ${det.id_list}-ID list` : '',
      ids.length ? '' : ' (the text encoder only)',
    ),
  );
  parts.push(dl);

  const touched = det.unet_blocks.filter((b) => b.modules);
  const table = h('table', { class: 'lora-blocks', dataset: { field: 'blocks' } });
  table.append(h('thead', {}, h('tr', {}, ...['ID', 'block', 'modules', 'rank', 'params added', 'FLOPs added'].map((c) => h('th', {}, c)))));
  const tbody = h('tbody');
  for (const b of touched) {
    const link = h('button', { type: 'button', class: 'linklike' }, b.path);
    link.addEventListener('click', () => onSelect(b.path));
    tbody.append(
      h(
        'tr',
        { dataset: { path: b.path, id: b.id ?? '' } },
        h('td', {}, b.id ?? '—'),
        h('td', {}, ctx.matches ? link : b.path),
        h('td', { class: 'num' }, String(b.modules)),
        h('td', { class: 'num' }, rankText(b.rank_min, b.rank_max)),
        h('td', { class: 'num' }, exact(b.params)),
        h('td', { class: 'num' }, b.flops != null ? compact(b.flops) : '—'),
      ),
    );
  }
  table.append(tbody);
  parts.push(h('div', { class: 'lora-table-wrap' }, h('h3', {}, `UNet blocks it patches (${touched.length})`), table));

  const te = det.text_encoder;
  const lists = h(
    'div',
    { class: 'ckpt-lists' },
    keyList('Text encoder', 'text-encoder', te.encoders, (e) => [
      h('code', {}, e.name),
      ` ${e.modules} modules, ${exact(e.params)} params${e.model ? ` (${e.model}, width ${e.width})` : ''}`,
    ], LIST_LIMIT),
    keyList('Unmatched', 'unmatched', det.unmatched, (u) => [h('code', {}, u.key), ` — ${u.reason}`], LIST_LIMIT),
  );
  parts.push(lists);
  if (det.notes.length) parts.push(h('ul', { class: 'ckpt-notes', dataset: { field: 'notes' } }, det.notes.map((n) => h('li', {}, n))));
  const meta = Object.entries(det.metadata ?? {});
  if (meta.length) {
    const details = h('details', { class: 'ckpt-meta', dataset: { field: 'metadata' } });
    details.append(h('summary', {}, `Metadata (${meta.length} entries)`));
    const mdl = h('dl', { class: 'facts' });
    for (const [k, v] of meta.slice(0, 24)) mdl.append(h('dt', {}, k), h('dd', {}, v.length > 300 ? `${v.slice(0, 300)}…` : v));
    details.append(mdl);
    parts.push(details);
  }
  // One line of totals always in view; the rest folds away, so the U stays on screen (open by default when the
  // file cannot be drawn on this model: the panel is then all there is to see).
  const more = h('details', { class: 'lora-more', open: !ctx.matches || null });
  more.append(h('summary', { dataset: { field: 'headline' } }, headline(det, ctx)), h('div', { class: 'lora-grid' }, ...parts));
  return [...head, more];
}

/** The details panel's "LoRA" lines for the selected block or module, or null where the LoRA adds nothing. */
export function loraDetails(det, path) {
  const module = det.modules.find((m) => m.path === path);
  const total = loraTotals(det).get(path);
  if (!module && !total) return null;
  const section = h('section', { class: 'lora-section', 'aria-label': 'What the LoRA adds here', dataset: { field: 'lora' } });
  section.append(h('h3', {}, 'LoRA'));
  const dl = h('dl', { class: 'facts' });
  if (module) {
    dl.append(...row('Key', 'lora-key', h('code', {}, module.lora_key)));
    dl.append(...row('Kind', 'lora-algo', `${module.algo} on a ${module.kind}${module.tucker ? ', CP / Tucker core' : ''}${module.dora ? ', DoRA' : ''}`));
    dl.append(...row('Rank', 'lora-rank', module.rank != null ? String(module.rank) : '— (full weights or whole factors)'));
    dl.append(...row('Alpha', 'lora-alpha', module.alpha != null ? `${module.alpha} (${module.alpha_source})` : `— (${module.alpha_source})`));
    dl.append(...row('Scale', 'lora-scale', module.scale != null ? String(Number(module.scale.toPrecision(4))) : '—'));
    dl.append(...row('Params added', 'lora-params', exact(module.params)));
    if (module.flops != null) dl.append(...row('FLOPs added', 'lora-flops', compact(module.flops)));
  } else {
    dl.append(...row('Patched', 'lora-modules', `${total.modules} module${total.modules === 1 ? '' : 's'}, ${rankText(total.rankMin, total.rankMax)}`));
    dl.append(...row('Params added', 'lora-params', exact(total.params)));
    if (total.flops) dl.append(...row('FLOPs added', 'lora-flops', compact(total.flops)));
  }
  section.append(dl);
  return section;
}

/**
 * Wires the button, the file input, the drop zone and the panel. detect(body, query) posts to /api/lora/detect;
 * context() says what is on screen: {preset, family, imageSize, title}; onDetected({file, id, detection, matches})
 * or onDetected(null) when closed; onSwitch(preset); onSelect(path). The panel's dataset.state is "reading",
 * "done" (dataset.flops "pending" / "done") or "error".
 */
export function createLora({ button, input, panel, dropZone }, { detect, context, onDetected, onSwitch, onSelect }) {
  let token = 0;
  let open = null; // {file, body, alphas, first (the family detection), detection, matches}

  function render(state, fileName, ...body) {
    panel.dataset.state = state;
    const head = panelHead('LoRA', fileName, 'Close the LoRA', () => {
      token += 1;
      open = null;
      panel.hidden = true;
      panel.dataset.state = 'closed';
      onDetected(null);
    });
    panel.replaceChildren(head, ...body);
    panel.hidden = false;
  }

  function show(flops) {
    const ctx = context();
    panel.dataset.flops = flops;
    render('done', open.file, ...loraView(open.detection, open.file, { title: ctx.title, matches: open.matches, flops }, { onSwitch, onSelect }));
  }

  /** Match the open LoRA against the model on screen and count its FLOPs at the current size. */
  async function refresh() {
    if (!open) return;
    const mine = ++token;
    const ctx = context();
    const first = open.first;
    const matches = Boolean(first.family && ctx.family === first.family);
    const query = matches ? { preset: ctx.preset, imageSize: ctx.imageSize } : { preset: first.preset };
    open.matches = matches;
    show('pending');
    onDetected({ file: open.file, id: open.id, detection: open.detection, matches });
    try {
      const got = await detect(open.body, { ...query, flops: true });
      if (mine !== token || !open) return;
      // The family is the first answer's (the shapes against every family); this one is matched to a given preset.
      const det = { ...got, family: first.family, family_title: first.family_title, family_evidence: [...first.family_evidence, ...got.family_evidence] };
      open.detection = det;
      show('done');
      onDetected({ file: open.file, id: open.id, detection: det, matches });
    } catch (err) {
      if (mine !== token || !open) return;
      show('done');
      panel.append(h('p', { class: 'error', role: 'alert', dataset: { field: 'flops-error' } }, `Could not count the FLOPs: ${err.reason ?? err.message}`));
    }
  }

  async function openFile(file) {
    const mine = ++token;
    button.disabled = true;
    render('reading', file.name, h('p', { class: 'muted', role: 'status' }, 'Reading the header…'));
    try {
      const { body, alphas } = await readLoraBody(file);
      // First the family and the modules, without a trace (fast); then the FLOPs on the model on screen.
      const first = await detect(body, { flops: false });
      if (mine !== token) return;
      open = { id: mine, file: file.name, body, alphas, first, detection: first, matches: false };
      button.disabled = false;
      await refresh();
    } catch (err) {
      if (mine !== token) return;
      open = null;
      onDetected(null);
      const why = err instanceof HeaderError ? err.message : err.reason ?? err.message;
      render('error', file.name, ...errorLines('Not opened as a LoRA: ', why, err.field));
    } finally {
      if (mine === token) button.disabled = false;
    }
  }

  wirePicker(button, input, openFile);
  if (dropZone) {
    const isFile = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
    dropZone.addEventListener('dragover', (e) => {
      if (!isFile(e)) return;
      e.preventDefault();
      dropZone.classList.add('drop-target');
    });
    dropZone.addEventListener('dragleave', () => dropZone.classList.remove('drop-target'));
    dropZone.addEventListener('drop', (e) => {
      if (!isFile(e)) return;
      e.preventDefault();
      dropZone.classList.remove('drop-target');
      const file = e.dataTransfer.files?.[0];
      if (file) openFile(file);
    });
  }

  return {
    open: openFile,
    refresh,
    get current() {
      return open;
    },
  };
}
