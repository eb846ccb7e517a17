// names.js — the community's names of the UNet's parts (issue 14): the "Names" switch that relabels every card in
// one naming scheme (original path, diffusers, the LoRA key stems in both spellings, block-weight ID, merge
// weight, kohya's block index), and the list of every name of the selected block for the details panel.
//
// Every name comes from POST /api/names (one table per model, asked once); nothing here derives a name. What this
// module does is presentation: a card shows its name relative to the nearest enclosing card that has one
// (`proj_in` inside `down_blocks.1.attentions.0`), a block that is several diffusers modules shows them with a
// shared prefix in braces (`down_blocks.1.{resnets,attentions}.0`), and the full names are in the details.

import { h, row } from './dom.js';

/** How a card says "this scheme has no name here". */
const NO_NAME = {
  diffusers: 'no diffusers module',
  lora_diffusers: 'no LoRA key',
  lora_original: 'no LoRA key',
  block_id: 'no block-weight ID',
  merge: 'no merge weight',
  kohya: 'no kohya slot',
};
/** Schemes that name each module; the others name whole blocks (a module carries its block's label). */
const PER_MODULE = new Set(['original', 'diffusers', 'lora_diffusers', 'lora_original']);
/** What kohya's targets mean, for the details. */
const KOHYA_TARGET = {
  lora: "kohya's plain LoRA trains it (an attention layer)",
  locon: 'only LoCon / LyCORIS train it (conv_dim: ResBlocks, resamplers)',
};

/** A name as a list: blocks that are several modules come comma-separated. */
export function splitNames(label) {
  return label ? label.split(', ').filter(Boolean) : [];
}

/** Several names in one: the shared head and tail once, the parts that differ in braces
 * ("down_blocks.1.resnets.0", "down_blocks.1.attentions.0" → "down_blocks.1.{resnets,attentions}.0"); joined
 * with " + " when a part would be empty. Pure text work on the server's names. */
export function joinNames(names) {
  if (names.length < 2) return names[0] ?? '';
  const tokens = names.map((n) => n.split(/([._])/).filter((t) => t !== ''));
  let head = 0;
  while (tokens.every((t) => head < t.length && t[head] === tokens[0][head])) head += 1;
  let tail = 0;
  while (tokens.every((t) => tail < t.length - head && t[t.length - 1 - tail] === tokens[0][tokens[0].length - 1 - tail])) tail += 1;
  const middles = tokens.map((t) => t.slice(head, t.length - tail).join(''));
  if (middles.some((m) => m === '' || /^[._]|[._]$/.test(m))) return names.join(' + ');
  return `${tokens[0].slice(0, head).join('')}{${middles.join(',')}}${tokens[0].slice(tokens[0].length - tail).join('')}`;
}

/**
 * The names of one model: a lookup over the /api/names table. labelFor(ix, node, scheme) is the card hook:
 * {title, sub} to draw instead of the card's own lines, or null to keep them.
 */
export function namesIndex(table) {
  const byPath = new Map();
  for (const b of table.blocks) byPath.set(b.path, { ...b, top: true });
  for (const m of table.modules) if (!byPath.has(m.path)) byPath.set(m.path, { ...m, top: false });
  const schemes = new Map(table.schemes.map((s) => [s.key, s]));

  /** The nearest enclosing module whose single name is a prefix of `label`: the card shows what follows it. */
  function relative(ix, node, scheme, label) {
    let parent = node.parent;
    while (parent) {
      const pl = byPath.get(parent)?.labels?.[scheme];
      if (pl && !pl.includes(', ') && pl !== label && label.startsWith(pl)) {
        return label.slice(pl.length).replace(/^[._]/, '') || label;
      }
      parent = ix.nodes.get(parent)?.parent ?? null;
    }
    return label;
  }

  function labelFor(ix, node, scheme, defaults) {
    if (!scheme || scheme === 'original' || !schemes.get(scheme)?.available) return null;
    const entry = byPath.get(node.path);
    if (!entry) return null;
    const label = entry.labels?.[scheme] ?? null;
    if (entry.top) {
      if (!label) return { title: `(${node.path})`, sub: NO_NAME[scheme] ?? 'no name here' };
      return { title: joinNames(splitNames(label)), sub: node.path };
    }
    if (PER_MODULE.has(scheme)) {
      // A numbered child's own title is its kind: keep that in the subtitle (ResBlock · 4.0).
      const sub = /^\d+$/.test(node.name ?? '') ? `${defaults.title} · ${defaults.sub}` : defaults.sub;
      if (!label) return { title: `(${defaults.title})`, sub };
      return { title: joinNames(splitNames(relative(ix, node, scheme, label))), sub };
    }
    // A block-level scheme: a module shows a label only where it differs from its parent's (SDXL's middle block
    // spans three kohya slots, say).
    const parentLabel = byPath.get(node.parent)?.labels?.[scheme] ?? null;
    if (label === parentLabel) return null;
    return { title: label ?? `(${defaults.title})`, sub: `${defaults.title} · ${defaults.sub}` };
  }

  return { table, byPath, schemes, labelFor, entry: (path) => byPath.get(path) ?? null };
}

/** The "Names" section of the details panel: the selected block's (or module's) name in every scheme, the current
 * one marked, and what kohya and the block-weight ID lists make of it. */
export function namesView(names, path, current) {
  const entry = names.entry(path);
  if (!entry) return null;
  const section = h('section', { class: 'names-section', 'aria-label': 'Names of this block', dataset: { field: 'names' } });
  section.append(h('h3', {}, 'Names ', h('span', { class: 'muted' }, names.table.layout_title ?? '')));
  const dl = h('dl', { class: 'facts names-facts' });
  for (const scheme of names.table.schemes) {
    const label = entry.labels?.[scheme.key] ?? null;
    const value = scheme.available
      ? splitNames(label).map((n, i) => [i ? h('br') : null, h('code', {}, n)])
      : [h('span', { class: 'muted' }, scheme.reason ?? 'not for this model')];
    const [dt, dd] = row(scheme.title, `name-${scheme.key}`, ...(value.length ? value : [h('span', { class: 'muted' }, '—')]));
    dt.title = scheme.description;
    if (scheme.key === current) {
      dt.classList.add('current');
      dd.classList.add('current');
    }
    dl.append(dt, dd);
  }
  const id = entry.labels?.block_id;
  if (id) {
    const lists = names.table.id_lists.filter((l) => l.ids.includes(id)).map((l) => `${l.name} (${l.title})`);
    const others = names.table.id_lists.filter((l) => !l.ids.includes(id)).map((l) => l.name);
    dl.append(
      ...row(
        'In ID lists',
        'name-id-lists',
        lists.length ? lists.join('; ') : 'none',
        others.length ? ` — not in the ${others.join(', ')}-ID list${others.length > 1 ? 's' : ''}` : '',
      ),
    );
  }
  if (entry.top) {
    const slot = names.table.kohya?.slots.find((s) => s.covers.includes(path));
    if (slot?.note) dl.append(...row('kohya', 'name-kohya-note', slot.note));
  } else if ('kohya_target' in entry) {
    dl.append(...row('kohya trains it', 'name-kohya-target', KOHYA_TARGET[entry.kohya_target] ?? 'no kohya network trains it'));
  }
  section.append(dl);
  return section;
}

/**
 * The "Names" switch and the tables behind it. load(model) gives the /api/names table of a {preset} or {config}
 * body; onChange(scheme) tells the store. current() is the table of the model on screen (null until it is in).
 */
export function createNames(select, { load, onChange, onLoaded }) {
  const tables = new Map(); // model body JSON → Promise of namesIndex
  let shown = null; // namesIndex of the model on screen
  let shownKey = null;

  select.addEventListener('change', () => onChange(select.value));

  function fill(names, scheme) {
    const options = (names?.table.schemes ?? [{ key: 'original', title: 'original paths', available: true }]).map((s) => {
      const o = h('option', { value: s.key, disabled: !s.available, title: s.available ? s.description : s.reason }, s.title);
      return o;
    });
    select.replaceChildren(...options);
    select.value = scheme;
  }

  /** Ask for the model's table (once per model); onLoaded() when it is the one on screen. */
  function forModel(model, scheme) {
    const key = JSON.stringify(model);
    if (key !== shownKey) shown = null; // another model's names must not label this one
    shownKey = key;
    if (!tables.has(key)) {
      const p = load(model).then(namesIndex);
      tables.set(key, p);
      p.catch(() => tables.delete(key));
    }
    tables
      .get(key)
      .then((names) => {
        if (shownKey !== key) return;
        shown = names;
        fill(names, scheme);
        onLoaded(names);
      })
      .catch(() => {
        if (shownKey !== key) return;
        shown = null;
        fill(null, 'original');
        onLoaded(null);
      });
  }

  return {
    forModel,
    setScheme(scheme) {
      if (select.querySelector(`option[value="${scheme}"]`)) select.value = scheme;
    },
    get current() {
      return shown;
    },
  };
}
