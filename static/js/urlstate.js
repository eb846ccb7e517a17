// urlstate.js — the view in the address, so a reload or a pasted link shows the same thing. Pure: text in, text out.
//
// The hash keeps the old "#preset@size" form and adds what else is set, as &key=value pairs:
//   #sdxl-base@1024&open=input_blocks.4,input_blocks.4.1&sel=input_blocks.4.1&color=flops&vs=sd1&vssize=same
// open: the opened blocks ("*" for every one), sel: the selected module, color: the "Colour by" overlay,
// vs: the preset compared with, vssize=same: both at this image size.
// names: the naming scheme the cards speak (block_id, diffusers, ...), bw: the block-weight spec (IN04-OUT05).
// Old links ("#sd1", "#sd1@768") still work; one with walk=N (the old tour's step) plays the Walk lesson.
// Module paths are letters, digits, "_" and ".", so lists stay readable with plain commas.

const ALL = '*';

/** Parse a location.hash. Missing parts come back null (open: [] unless given). */
export function readUrl(hash) {
  const text = (hash ?? '').replace(/^#/, '');
  const amp = text.indexOf('&');
  const head = amp < 0 ? text : text.slice(0, amp);
  const params = new URLSearchParams(amp < 0 ? '' : text.slice(amp + 1));
  let preset = null;
  let size = null;
  try {
    const [p, s] = decodeURIComponent(head).split('@');
    preset = p || null;
    size = Number(s) > 0 ? Math.round(Number(s)) : null;
  } catch {
    // A mangled link: keep the defaults.
  }
  const open = params.get('open');
  const vs = params.get('vs');
  return {
    preset,
    size,
    open: open === ALL ? ALL : open ? open.split(',').filter(Boolean) : [],
    selection: params.get('sel') || null,
    overlay: params.get('color') || null,
    compare: vs ? { preset: vs, sameSize: params.get('vssize') === 'same' } : null,
    names: params.get('names') || null,
    blockWeights: params.get('bw') || null,
    walk: params.has('walk'), // an old link into the Walk tour, which is a lesson now (lesson_player.js)
  };
}

/**
 * The hash for a view: {preset, size, open (paths, or "*"), selection, overlay, compare, names, blockWeights}. Only what differs
 * from the defaults is written, so an untouched page keeps the short "#sd1@512".
 */
export function writeUrl({
  preset, size, open = [], selection = null, overlay = 'none', compare = null, names = 'original', blockWeights = null,
}) {
  let hash = `#${encodeURIComponent(preset ?? '')}@${size ?? ''}`;
  const item = (s) => encodeURIComponent(s).replaceAll('%2C', ',');
  if (open === ALL) hash += `&open=${ALL}`;
  else if (open.length) hash += `&open=${open.map(encodeURIComponent).join(',')}`;
  if (selection) hash += `&sel=${item(selection)}`;
  if (overlay && overlay !== 'none') hash += `&color=${item(overlay)}`;
  if (compare?.preset) {
    hash += `&vs=${item(compare.preset)}`;
    if (compare.sameSize) hash += '&vssize=same';
  }
  if (names && names !== 'original') hash += `&names=${item(names)}`;
  if (blockWeights) hash += `&bw=${item(blockWeights)}`;
  return hash;
}
