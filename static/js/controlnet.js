// controlnet.js — the data side of control models on the page: the ControlNet presets as models of the selector,
// the requests for a ControlNet's trace (with its control scales) and its diffusers names, and the checkpoint panel's
// view of a ControlNet / T2I-Adapter / control-LoRA detection report. No drawing here (controlnet_view.js draws);
// every number shown comes from the API (injection shapes, parameters, FLOPs, sizes), none is computed here.

import { request } from './api.js';
import { bytes, compact, exact } from './format.js';
import { h, row } from './dom.js';

/** The selector's group for the ControlNet presets (main.js groups models by `group`). */
export const CONTROL_GROUP = 'ControlNets';

const KIND_WORDS = { controlnet: 'ControlNet', t2i_adapter: 'T2I-Adapter', control_lora: 'control-LoRA' };
const ADDED_WORDS = {
  skip: 'added to the skip',
  middle: "added to the middle block's output",
  encoder: 'added to the down stage after',
};

export function kindWords(kind) {
  return KIND_WORDS[kind] ?? kind;
}

/** GET /api/controlnet/presets → [{name, title, base_preset, num_parameters, hint_channels, num_injections, ...}]. */
export function getControlPresets() {
  return request('GET', '/api/controlnet/presets');
}

/**
 * A model entry (state.models) for a ControlNet preset: the main U draws its base UNet (config null → the base
 * preset is traced), and `control` says which ControlNet to trace beside it.
 */
export function presetEntry(p) {
  return {
    key: p.name,
    label: `${p.name} — ${p.title}`,
    group: CONTROL_GROUP,
    config: null,
    preset: p.base_preset,
    control: { kind: 'controlnet', preset: p.name, config: null, hintChannels: p.hint_channels, report: null },
  };
}

/** A model entry for a control model opened from a file (its detection report kept for the panel). */
export function fileEntry(det, file) {
  return {
    key: `checkpoint:${file}`,
    label: `From checkpoint: ${file} (${kindWords(det.kind)})`,
    // The UNet it steers: its preset when known, else the UNet config the ControlNet copies.
    config: det.base_preset ? null : det.config,
    preset: det.base_preset,
    file,
    control: { kind: det.kind, preset: det.preset, config: det.config, hintChannels: det.hint_channels, report: det },
  };
}

/** Whether a ControlNet trace can be asked for: a preset, or the config plus the hint channels of a file. */
export function canTrace(control) {
  return control.kind === 'controlnet' && Boolean(control.preset || control.config);
}

/** POST /api/trace for the ControlNet: its preset (or config + controlnet), the image size and the control scales. */
export function getControlTrace(control, { imageSize = null, scales = null } = {}) {
  const body = control.preset
    ? { preset: control.preset }
    : { config: control.config, controlnet: { hint_channels: control.hintChannels ?? 3 } };
  if (imageSize) body.image_size = [imageSize, imageSize];
  if (scales) body.control_scales = scales;
  return request('POST', '/api/trace', body);
}

/** POST /api/diffusers-names for a ControlNet preset → {supported, reason, names: {path: diffusers name | null}}. */
export function getControlNames(control) {
  if (!control.preset) return Promise.resolve({ supported: false, reason: 'only for the ControlNet presets', names: {} });
  return request('POST', '/api/diffusers-names', { preset: control.preset });
}

/**
 * The modules under `path` that own tensors (parameters of their own), with their names in both layouts: the
 * original (cldm) name, and diffusers' ControlNetModel name from the API (null where diffusers has none).
 */
export function stateDictNames(trace, path, diffusersNames) {
  const out = [];
  for (const node of trace.nodes) {
    if (!(node.path === path || node.path.startsWith(`${path}.`))) continue;
    if (!node.params_own) continue;
    out.push({ original: node.path, diffusers: diffusersNames?.[node.path] ?? null, params: node.params_own });
  }
  return out;
}

/** The checkpoint panel's content for a control model's detection report (pure DOM from data). */
export function controlDetectionView(det, fileName) {
  const dl = h('dl', { class: 'facts ckpt-facts', dataset: { kind: det.kind } });
  dl.append(...row('File', 'file', h('code', {}, fileName)));
  dl.append(...row('Kind', 'kind', h('strong', {}, kindWords(det.kind))));
  dl.append(...row('Layout', 'format', det.layout === 'ldm' ? 'ldm (original names)' : 'diffusers names'));
  dl.append(...row('Prefix', 'prefix', det.prefix ? h('code', {}, det.prefix) : '(none)'));
  dl.append(...row('Steers', 'base', det.base_preset ?? (det.family ? `a ${det.family} UNet` : 'an unknown UNet')));
  if (det.kind === 'controlnet') {
    dl.append(...row('Preset', 'preset', h('strong', {}, det.preset ?? 'custom'),
      det.exact ? ' (loads strictly)' : ` (${det.missing.length} missing, ${det.unexpected.length} unexpected, ${det.mismatched.length} mismatched)`));
  }
  dl.append(...row('Parameters', 'params', h('strong', {}, exact(det.num_parameters)), ` (${compact(det.num_parameters)})`));
  dl.append(...row('Size', 'bytes', bytes(det.total_bytes)));
  if (det.adapter) {
    const a = det.adapter;
    dl.append(...row('Adapter', 'adapter', `${a.type}, ${a.in_channels}-channel image, pixel-unshuffle ${a.unshuffle_factor}, `
      + `widths ${a.channels.join(', ')}, ${a.num_res_blocks} res blocks each`));
  }
  if (det.lora) {
    const l = det.lora;
    dl.append(...row('Low-rank part', 'lora', `ranks ${l.ranks.join(', ')}: ${exact(l.lora_modules)} modules as up/down pairs `
      + `(${compact(l.lora_parameters)} parameters), ${exact(l.full_tensors)} tensors in full`));
  }
  const list = h('ol', { class: 'cn-points', dataset: { field: 'injections' }, start: '0' });
  for (const p of det.injections) {
    list.append(h('li', { dataset: { target: p.target, addedTo: p.added_to } },
      h('code', {}, p.target), ` ${ADDED_WORDS[p.added_to] ?? p.added_to}: ${p.channels} channels at latent / ${p.factor} `
      + `(image / ${p.image_factor})`));
  }
  const parts = [dl, h('h3', {}, `Injection points (${det.injections.length})`), list];
  if (det.notes?.length) parts.push(h('ul', { class: 'ckpt-notes', dataset: { field: 'notes' } }, det.notes.map((n) => h('li', {}, n))));
  return parts;
}

export { ADDED_WORDS };
