// details.js — the "Details" panel: everything the trace knows about the selected module (path, kind, shapes,
// parameters, FLOPs by operation, activation memory, measured time), a plain-language explanation, and its
// Python source on request; the module's name in diffusers, and with a weights file the statistics of its weights.
// Built from DOM nodes with textContent only: trace data never becomes markup.

import { explain, resampleWords } from './explain.js';
import { bytes, compact, exact, ms, percent, shapeFull, shapeText } from './format.js';
import { drawHistogram, statNumber } from './weights.js';
import { breakAtDots, h, row } from './dom.js';

// Modules bigger than this get their weight statistics on a click, not on selection: they read the whole block.
const AUTO_STATS_PARAMS = 50e6;

const axes = (xs) => xs.join('×');

/** The typed layer facts of a node as [label, data-field, text] rows: conv, linear, norm, pool, attention,
 * resampling and ResBlock settings, each only where the trace states it. */
export function layerFacts(node) {
  const out = [];
  const c = node.conv;
  if (c) {
    out.push(['Kernel', 'kernel', `${axes(c.kernel)}, stride ${axes(c.stride)}, padding ${axes(c.padding)}`]);
    out.push(['Channels', 'conv-channels', `${c.in_channels} → ${c.out_channels}${c.groups > 1 ? ` in ${c.groups} groups` : ''}`
      + `${c.dilation.some((d) => d > 1) ? `, dilation ${axes(c.dilation)}` : ''}${c.bias ? ', with bias' : ', no bias'}`]);
  }
  const l = node.linear;
  if (l) out.push(['Features', 'linear', `${l.in_features} → ${l.out_features}${l.bias ? ', with bias' : ', no bias'}`]);
  const n = node.norm;
  if (n) {
    const what = n.type === 'group' ? `${n.groups} groups of ${n.channels / n.groups} channels` : `over ${n.channels} channels`;
    out.push(['Norm', 'norm', `${what}, eps ${n.eps}${n.affine ? ', learned scale and shift' : ''}${n.float32 ? ', in float32' : ''}`]);
  }
  const p = node.pool;
  if (p) out.push(['Pool', 'pool', `${p.type} ${axes(p.kernel)}, stride ${axes(p.stride)}`]);
  const a = node.attention;
  if (a) {
    let text = `${a.heads} heads × ${a.head_channels} channels`;
    if (a.depth != null) text += `, ${a.depth} transformer block${a.depth === 1 ? '' : 's'}`;
    if (a.context_dim != null) text += `, context width ${a.context_dim}`;
    if (a.projection) text += `, ${a.projection} projections`;
    if (a.self_attention_disabled) text += ', no self-attention (attn1 reads the context)';
    out.push(['Attention', 'attention', text]);
  }
  const sc = a?.scores;
  if (sc) {
    // The quadratic point: one weight per (head, query, key), stated by the trace from the traced shapes.
    const [batch, heads, queries, keys] = sc.shape;
    out.push(['Score matrix', 'scores', `${batch > 1 ? `${batch} × ` : ''}${heads} × ${queries} × ${keys} `
      + `(${batch > 1 ? 'batch × ' : ''}heads × queries × keys) = ${compact(sc.elements)} weights: `
      + `${bytes(sc.bytes_float32)} in float32, ${bytes(sc.bytes_float16)} in float16, if stored whole `
      + '(a fused kernel such as flash attention works in tiles and never stores it)']);
  }
  const r = node.resample;
  if (r) out.push(['Resample', 'resample', `${r.direction === 'down' ? '÷' : '×'}${r.factor}: ${resampleWords(r)}`]);
  const rb = node.resblock;
  if (rb) {
    out.push(['ResBlock', 'resblock', `${rb.in_channels} → ${rb.out_channels} channels, reads the ${rb.emb_channels}-wide time `
      + `embedding${rb.scale_shift_norm ? ' as a scale and shift' : ''}; skip ${rb.skip === 'identity' ? 'identity' : '1×1 conv'}`]);
  }
  return out;
}

/** What a module reads, as text: its running tensor, then the time embedding and the context only where it reads
 * them. A block is called with (x, emb, context) whatever it holds, so a Downsample is handed both and reads
 * neither; the extra inputs are told apart by their shapes (the context's is the trace's input, the embedding's
 * the time embedding's output). */
export function readInputs(ix, node) {
  const [x, ...extra] = node.inputs ?? [];
  if (!x) return [];
  const same = (a, b) => Boolean(a && b) && a.length === b.length && a.every((v, i) => v === b[i]);
  const ctxShape = ix.trace.input?.context?.shape;
  const embShape = ix.nodes.get('time_embed')?.outputs?.[0]?.shape;
  const out = [shapeFull(x.shape)];
  for (const t of extra) {
    if (same(t.shape, ctxShape)) {
      if (node.takes_context) out.push(`context ${shapeFull(t.shape)}`);
    } else if (same(t.shape, embShape)) {
      if (node.takes_emb) out.push(`time emb ${shapeFull(t.shape)}`);
    } else {
      out.push(shapeFull(t.shape));
    }
  }
  return out;
}

export function createDetails(root, { onToggle, onSelect, loadSource, loadSourceKinds, loadDiffusersNames, weights, extraSections }) {
  let current = null; // {ix, path}
  let codeToken = 0; // a new show() makes every answer still on its way for the old one stale
  // The block whose tensor list the reader unfolded: the dock is drawn again when names or a LoRA arrive, and
  // the list must not snap shut under the reader's eyes.
  let tensorsOpenFor = null;
  const namesByModel = new Map(); // config JSON → Promise of /api/diffusers-names: asked once per model

  function diffusersNames(trace) {
    if (!loadDiffusersNames || !trace?.config) return null;
    const key = JSON.stringify(trace.config);
    if (!namesByModel.has(key)) {
      const p = loadDiffusersNames(trace);
      namesByModel.set(key, p);
      p.catch(() => namesByModel.delete(key));
    }
    return namesByModel.get(key);
  }

  // The classes whose source the server shows (ours, asked once); the rest are PyTorch built-ins.
  let ours = null;
  const sources = new Map(); // kind → Promise of {source, module}, or of null for a PyTorch built-in
  function sourceOf(kind) {
    if (!ours) {
      ours = loadSourceKinds().then((list) => new Set(list));
      ours.catch(() => {
        ours = null; // a network error: ask again next time
      });
    }
    if (!sources.has(kind)) {
      const p = ours.then((set) => (set.has(kind) ? loadSource(kind) : null));
      p.catch(() => sources.delete(kind));
      sources.set(kind, p);
    }
    return sources.get(kind);
  }

  function show(ix, path, { expanded, expandable, model }) {
    current = { ix, path };
    codeToken += 1;
    const node = ix?.nodes.get(path ?? '');
    if (!node) {
      root.replaceChildren(h('h2', {}, 'Details'), h('p', { class: 'muted' }, 'Loading the model…'));
      return;
    }
    const total = ix.totals;
    const isRoot = node.path === '';
    const block = ix.blockByPath.get(node.path);
    const title = isRoot ? `${model ?? ix.trace.preset ?? 'custom'} — the whole UNet` : node.path;

    const dl = h('dl', { class: 'facts' });
    if (!isRoot) dl.append(...row('Path', 'path', h('code', {}, node.path)));
    if (!isRoot) addDiffusersName(dl, ix, node.path);
    dl.append(...row('Kind', 'kind', node.kind));
    dl.append(...row('Category', 'category', node.category.replaceAll('_', ' ')));
    for (const [label, field, text] of layerFacts(node)) dl.append(...row(label, field, text));
    if (block && block.level != null) {
      dl.append(...row('Stage', 'stage', `${block.stage}, level ${block.level} (latent ÷${2 ** block.level})`));
    } else if (node.stage) {
      dl.append(...row('Stage', 'stage', `${node.stage}${node.level != null ? `, level ${node.level}` : ''}`));
    }
    const inputs = readInputs(ix, node);
    dl.append(...row(inputs.length > 1 ? 'Inputs' : 'Input', 'inputs', inputs.length ? inputs.join(' · ') : '—'));
    const outputs = (node.outputs ?? []).map((t) => shapeFull(t.shape));
    dl.append(...row('Output', 'output', outputs.length ? outputs.join(' · ') : '—'));
    const skip = ix.skipInto.get(node.path);
    if (skip) {
      dl.append(...row('Skip in', 'skip', `${shapeText(skip.shape)} from `, link(skip.from), ` → concat ${shapeText(skip.concat_shape)}`));
    }
    const feeds = ix.trace.skips.find((s) => s.from === node.path);
    if (feeds) dl.append(...row('Skip out', 'skip-out', `${shapeText(feeds.shape)} to `, link(feeds.to)));
    dl.append(
      ...row(
        'Parameters',
        'params',
        h('strong', {}, exact(node.params)),
        ` (${compact(node.params)}, ${percent(total.params ? node.params / total.params : null)} of the model)`,
      ),
    );
    if (node.children.length) dl.append(...row('Own params', 'params-own', exact(node.params_own)));
    const elementWise = !node.children.length && node.flops === 0 && ['norm', 'activation', 'dropout', 'identity'].includes(node.category);
    dl.append(
      ...row(
        'FLOPs',
        'flops',
        h('strong', {}, compact(node.flops)),
        ` (${percent(total.flops ? node.flops / total.flops : null)} of the model) · ${compact(node.macs)} MACs`,
        elementWise ? ' — element-wise ops (norms, activations) are not counted in FLOPs' : '',
      ),
    );
    const byOp = Object.entries(node.flops_by_op ?? {}).filter(([, v]) => v > 0);
    if (byOp.length) {
      const list = h('ul', { class: 'byop' });
      for (const [op, v] of byOp) {
        list.append(h('li', {}, h('span', { class: `op-${op}` }, op), ` ${compact(v)} (${percent(node.flops ? v / node.flops : 0)})`));
      }
      dl.append(...row('FLOPs by op', 'flops-by-op', list));
    }
    dl.append(...row('Activations', 'activation', `${bytes(node.activation_bytes)} (output at ${ix.trace.dtype})`));
    if (isRoot) {
      dl.append(...row('Peak memory', 'peak', `${bytes(ix.trace.totals.peak_memory_bytes)} (weights + peak activations)`));
    }
    if (node.time_ms != null) {
      const share = total.time ? node.time_ms / total.time : null;
      dl.append(...row('Time', 'time', h('strong', {}, ms(node.time_ms)), ` (${percent(share)} of the hooked forward on ${ix.trace.device}: a run with a timer on every module, a little `
        + 'slower than a plain one)'));
    }
    if (node.call_order != null) {
      dl.append(...row('Runs', 'order', `#${node.call_order} of the forward's module calls, in execution order`));
    }

    const actions = h('div', { class: 'actions' });
    if (!isRoot && expandable) {
      const open = h('button', { type: 'button' }, expanded ? 'Close block' : 'Open block');
      open.addEventListener('click', () => onToggle(node.path));
      actions.append(open);
    }
    const code = h('pre', { class: 'code', hidden: true, tabindex: 0, 'aria-label': 'Python source' });
    // The server shows the source of our own classes; for a PyTorch built-in it answers 404 (asked once per kind).
    const builtIn = h('span', { class: 'muted', dataset: { field: 'built-in' } });
    const btn = h('button', { type: 'button', 'aria-expanded': 'false' }, 'Show code');
    actions.append(btn, builtIn);
    const mine = codeToken;
    sourceOf(node.kind).then((src) => {
      if (mine !== codeToken || src) return;
      btn.remove();
      builtIn.textContent = `${node.kind} is a PyTorch built-in (torch.nn.${node.kind}).`;
    }).catch(() => {}); // unknown: the button stays and says why on a click
    btn.addEventListener('click', async () => {
      if (!code.hidden) {
        code.hidden = true;
        btn.textContent = 'Show code';
        btn.setAttribute('aria-expanded', 'false');
        return;
      }
      const token = codeToken;
      btn.disabled = true;
      try {
        const src = await sourceOf(node.kind);
        if (token !== codeToken) return;
        if (!src) throw new Error(`${node.kind} is a PyTorch built-in`);
        code.replaceChildren(h('code', {}, src.source));
        code.dataset.module = src.module;
        code.hidden = false;
        btn.textContent = 'Hide code';
        btn.setAttribute('aria-expanded', 'true');
      } catch (err) {
        code.replaceChildren(document.createTextNode(`Could not load the source: ${err.message}`));
        code.hidden = false;
      } finally {
        btn.disabled = false;
      }
    });

    // weightsSection is null when no weights file matches this model: leave it out (replaceChildren would
    // write "null" as text).
    const parts = [
      h('h2', { class: 'details-title' }, ...breakAtDots(title)),
      h('p', { class: 'kind-line' }, h('span', { class: 'kind-badge', dataset: { stage: node.stage ?? '' } }, node.kind),
        ` ${node.category.replaceAll('_', ' ')}`),
      h('p', { class: 'explain' }, explain(node, block)),
      dl,
      weightsSection(ix, node),
      ...(extraSections?.(ix, node.path) ?? []), // names in every scheme, what a LoRA adds (community.js)
      actions,
      code,
    ];
    root.replaceChildren(...parts.filter((part) => part != null));
  }

  /** The "diffusers name" row, after the path, once the names are known (none for modules diffusers lacks). */
  function addDiffusersName(dl, ix, path) {
    const names = diffusersNames(ix.trace);
    if (!names) return;
    const token = codeToken;
    const after = dl.lastElementChild;
    names
      .then((res) => {
        const name = res?.supported ? res.names?.[path] : null;
        if (token !== codeToken || !name) return;
        const [dt, dd] = row('diffusers name', 'diffusers', h('code', {}, name));
        after.after(dt, dd);
      })
      .catch(() => {}); // no names, no row: the rest of the panel stands
  }

  /** Each tensor of the module (its key below the module's path), folded away: shape, dtype, mean, std. */
  function tensorList(path, tensors) {
    const box = h('details', { class: 'wtensors', dataset: { field: 'w-tensors' } });
    box.open = tensorsOpenFor === path;
    box.addEventListener('toggle', () => {
      tensorsOpenFor = box.open ? path : null;
    });
    box.append(h('summary', {}, `${tensors.length} tensor${tensors.length === 1 ? '' : 's'}`));
    const ul = h('ul', {});
    for (const t of tensors.slice(0, 64)) {
      const name = path && t.key.startsWith(`${path}.`) ? t.key.slice(path.length + 1) : t.key;
      ul.append(
        h('li', {}, h('code', {}, name), ` [${t.shape.join(', ')}] ${t.dtype} · mean ${statNumber(t.mean)} · std ${statNumber(t.std)}`),
      );
    }
    box.append(ul);
    if (tensors.length > 64) box.append(h('p', { class: 'muted' }, `… and ${tensors.length - 64} more`));
    return box;
  }

  /** Statistics of the module's weights, when the server has a weights file of the model on screen. */
  function weightsSection(ix, node) {
    if (!weights?.matches(ix.trace.config)) return null;
    const section = h('section', { class: 'weights', 'aria-label': 'Weights' });
    section.append(h('h3', {}, 'Weights ', h('span', { class: 'muted' }, weights.info.file)));
    if (!node.params) {
      section.append(h('p', { class: 'muted', dataset: { field: 'w-none' } }, 'No weights: this module has no parameters.'));
      return section;
    }
    const body = h('div', { class: 'weights-body' });
    section.append(body);
    const load = () => {
      const token = codeToken;
      body.replaceChildren(h('p', { class: 'muted' }, 'Reading the weights…'));
      weights
        .stats(node.path)
        .then((s) => {
          if (token !== codeToken) return;
          const facts = h('dl', { class: 'facts wstats' });
          facts.append(...row('count', 'w-count', exact(s.count)));
          for (const k of ['mean', 'std', 'norm', 'min', 'max']) {
            facts.append(...row(k, `w-${k}`, statNumber(s[k])));
          }
          const hist = h('div', { class: 'hist', dataset: { field: 'w-hist' } });
          body.replaceChildren(facts, hist, tensorList(node.path, s.tensors ?? []));
          return drawHistogram(hist, s).then(() => {
            hist.dataset.drawn = 'true';
          });
        })
        .catch((err) => {
          if (token !== codeToken) return;
          body.replaceChildren(h('p', { class: 'muted' }, `Could not read the weights: ${err.reason ?? err.message}`));
        });
    };
    if (node.params > AUTO_STATS_PARAMS) {
      const btn = h('button', { type: 'button' }, `Compute statistics (${compact(node.params)} values)`);
      btn.addEventListener('click', load);
      body.append(btn);
    } else {
      load();
    }
    return section;
  }

  function link(path) {
    const a = h('button', { type: 'button', class: 'linklike' }, path);
    a.addEventListener('click', () => onSelect(path));
    return a;
  }

  return {
    show,
    get current() {
      return current;
    },
  };
}
