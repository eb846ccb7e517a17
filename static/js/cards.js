// cards.js — what a box says when closed (also the header of an opened box), and how big that makes it. Pure.
// A top-level card has four lines: its path, what it is made of ("Res · Transformer ×10"), its key fact from the
// trace ("20 heads × 64", "3×3 conv, stride 2", "320 → 640 ch") and its output shape. An inner card has three:
// its name, its kind with its layer settings ("Conv2d 3×3 s2 p1"), and its output shape.
// A top-level card's width comes from its own lines, whatever the "Names" switch shows (issue 24): another scheme's
// longer names never widen the U, so it keeps its fit; they are shortened in the middle instead, the full name in
// the card's tooltip and in the details. An inner card grows to its name up to its widest, and is shortened past it.

import { FONT, SIZES as Z, textWidth } from './config.js';
import { KINDS, RESAMPLE } from './kinds.js';
import { shapeText } from './format.js';

const axes = (xs) => (xs.every((v) => v === xs[0]) ? String(xs[0]) : xs.join('×'));
const kernel = (c) => c.kernel.join('×');

/** How a resampler changes the resolution, in a few words. */
export function resampleShort(r) {
  return RESAMPLE[r.method]?.short ?? r.method;
}

function whatItHolds(ix, node) {
  const summary = KINDS[node.category]?.summary;
  if (summary) return summary;
  const kids = node.children.map((c) => ix.nodes.get(c)).filter((c) => ix.order.get(c.path) !== Infinity);
  const words = kids.map((c) => {
    const short = KINDS[c.category]?.short;
    const depth = c.attention?.depth;
    return `${(typeof short === 'function' ? short(c) : short) ?? c.kind}${depth > 1 ? ` ×${depth}` : ''}`;
  });
  return words.join(' · ') || node.kind;
}

/** The first convolution inside a module (the input conv's, the output head's). */
function firstConv(ix, node) {
  for (const c of node.children) {
    const n = ix.nodes.get(c);
    if (n.conv) return n.conv;
    const inner = firstConv(ix, n);
    if (inner) return inner;
  }
  return null;
}

/** The key fact of a top-level block, from its typed entry in trace.blocks. */
function keyFact(ix, node, block) {
  const attn = block.attention?.[0];
  if (attn) return `${attn.heads} heads × ${attn.head_channels}`;
  if (block.resample) return resampleShort(block.resample);
  const conv = ['input_conv', 'output_head', 'codebook_head'].includes(block.category) ? firstConv(ix, node) : null;
  if (conv) return `${kernel(conv)} conv, ${conv.in_channels} → ${conv.out_channels}`;
  return `${block.in_channels} → ${block.out_channels} ch`;
}

/** An inner module's kind with its settings: "Conv2d 3×3 s2 p1", "Linear 320→1280", "CrossAttention 8h×40". */
function kindLine(node) {
  const c = node.conv;
  if (c) return `${node.kind} ${kernel(c)} s${axes(c.stride)} p${axes(c.padding)}${c.groups > 1 ? ` g${c.groups}` : ''}`;
  const l = node.linear;
  if (l) return `${node.kind} ${l.in_features}→${l.out_features}`;
  const a = node.attention;
  if (a) return `${node.kind}${a.depth > 1 ? ` ×${a.depth}` : ''} · ${a.heads}h×${a.head_channels}`;
  if (node.norm?.groups) return `${node.kind} · ${node.norm.groups} groups`;
  if (node.resample) return `${node.kind} · ${resampleShort(node.resample)}`;
  return node.kind;
}

/** The lines of a card: title, sub (what it is), fact (top-level cards only, else ''), and the output shape. */
export function cardLines(ix, node) {
  const lines = ownCardLines(ix, node);
  // The "Names" switch (names.js) may give the title and subtitle in another naming scheme.
  const named = ix.cardLabel?.(ix, node, lines);
  return named ? { ...lines, ...named } : lines;
}

function ownCardLines(ix, node) {
  const out = shapeText(node.outputs?.[0]?.shape);
  const block = ix.blockByPath.get(node.path);
  if (block) return { title: node.path, sub: whatItHolds(ix, node), fact: keyFact(ix, node, block), shape: out };
  if (/^\d+$/.test(node.name)) {
    const parent = ix.nodes.get(node.parent);
    return { title: kindLine(node), sub: `${parent?.name ?? ''}.${node.name}`, fact: '', shape: out };
  }
  return { title: node.name, sub: kindLine(node), fact: '', shape: out };
}

/** `text` shortened in the middle to about `maxW` px at `size`: its first word, "…", and as much of its end as fits
 * (where a name's index and kind are: "down…attentions}.0", "lora…blocks_1_"), starting after a separator when
 * one is near. */
export function middleEllipsis(text, maxW, size, mono = false) {
  if (textWidth(text, size, mono) <= maxW) return text;
  const n = Math.max(2, Math.floor(maxW / textWidth('m', size, mono)) - 1); // characters kept besides "…"
  const word = text.search(/[._{},]/);
  const head = word > 0 && word <= 0.4 * n ? word : Math.max(1, Math.floor(0.3 * n));
  let from = text.length - (n - head);
  for (let i = from; i < Math.min(from + 4, text.length - 1); i += 1) {
    if ('._{,'.includes(text[i - 1])) {
      from = i;
      break;
    }
  }
  return `${text.slice(0, head)}…${text.slice(from)}`;
}

/** The lines drawn on a card `w` px wide: a naming scheme's title and subtitle shortened to the room the card has
 * for them (cardSize), and `full`, the unshortened lines, when anything was cut (else null). */
export function fittedCardLines(ix, node, top, w) {
  const own = ownCardLines(ix, node);
  const named = ix.cardLabel?.(ix, node, own);
  if (!named) return { ...own, full: null }; // its own lines: the card was sized for them
  const lines = { ...own, ...named };
  // The room cardSize reserves around each line: what a card sized for the line would leave it.
  const title = middleEllipsis(lines.title, w - (top ? 24 : 36), top ? FONT.title : FONT.title * 1.1, top);
  const sub = middleEllipsis(lines.sub, w - (top ? 34 : 20), FONT.sub);
  return { ...lines, title, sub, full: title !== lines.title || sub !== lines.sub ? lines : null };
}

export function cardSize(ix, node, top) {
  const lines = top ? ownCardLines(ix, node) : cardLines(ix, node); // a top card's own lines: see the header
  const need = Math.max(
    textWidth(lines.title, top ? FONT.title : FONT.title * 1.1, top) + (top ? 4 : 16), // inner titles are bold sans; 16: ±
    textWidth(lines.sub, FONT.sub) + (top ? 14 : 0), // top cards have their ± sign on this line
    textWidth(lines.fact, FONT.sub),
    textWidth(lines.shape, FONT.shape, true) + 40, // room for the share, right-aligned
  ) + 20;
  if (top) return { w: Math.max(Z.top.w, Math.ceil(need)), h: Z.top.h };
  return { w: Math.min(Z.inner.maxW, Math.max(Z.inner.minW, Math.ceil(need))), h: Z.inner.h };
}
