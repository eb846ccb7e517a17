// checkpoint.js — "Open checkpoint": reads only the header out of a .safetensors file the user picks
// (safetensors-header.js: the 8-byte length, then the JSON), asks the server which UNet the
// tensor table describes, and shows the answer in the "Checkpoint" panel. The weights themselves never leave the
// machine, and a multi-GB file costs two small reads.
//
// Everything shown here comes from the user's file (tensor names, file name, metadata) or from the server's error
// text: it goes into the page through textContent and DOM nodes only, never as markup.

import { bytes, compact, exact } from './format.js';
import { h, row } from './dom.js';
import { errorLines, panelHead, wirePicker } from './file-panel.js';
import { keyList } from './key-list.js';
import { readHeaderText } from './safetensors-header.js';
import { controlDetectionView } from './controlnet.js';

/** Keys listed per kind (missing, unexpected, mismatched); the rest are counted. */
const LIST_LIMIT = 8;
const METADATA_LIMIT = 12;

/** The detection result as panel content (no event handlers: pure DOM from data). */
export function detectionView(det, fileName) {
  const dl = h('dl', { class: 'facts ckpt-facts' });
  dl.append(...row('File', 'file', h('code', {}, fileName)));
  dl.append(...row('Format', 'format', det.format === 'ldm' ? 'ldm (original names)' : `${det.format} (diffusers names)`));
  dl.append(...row('Prefix', 'prefix', det.prefix ? h('code', {}, det.prefix) : '(none)'));
  const others = (det.matching_presets ?? []).filter((p) => p !== det.preset);
  dl.append(
    ...row(
      'Preset',
      'preset',
      h('strong', {}, det.preset ?? 'custom'),
      others.length ? ` (the same network as ${others.join(', ')})` : '',
      det.preset ? '' : ' architecture, reconstructed from the shapes',
    ),
  );
  dl.append(...row('Parameters', 'params', h('strong', {}, exact(det.num_parameters)), ` (${compact(det.num_parameters)})`));
  const dtypes = Object.entries(det.bytes_by_dtype ?? {}).sort((a, b) => b[1] - a[1]);
  const dtypeList = h('ul', { class: 'plain' });
  for (const [dtype, n] of dtypes) dtypeList.append(h('li', {}, h('code', {}, dtype), ` ${bytes(n)}`));
  dl.append(...row('UNet bytes', 'dtypes', dtypes.length ? dtypeList : '—'));
  dl.append(
    ...row(
      'Loads',
      'exact',
      det.exact
        ? 'strictly: every key and shape fits the detected architecture'
        : `with differences: ${det.missing.length} missing, ${det.unexpected.length} unexpected, ${det.mismatched.length} mismatched`,
    ),
  );
  const otherKeys = Object.entries(det.other_keys ?? {});
  if (otherKeys.length) {
    const ul = h('ul', { class: 'plain' });
    for (const [name, n] of otherKeys.slice(0, LIST_LIMIT)) ul.append(h('li', {}, h('code', {}, name), ` ${n} tensor${n === 1 ? '' : 's'}`));
    if (otherKeys.length > LIST_LIMIT) ul.append(h('li', { class: 'muted' }, `… and ${otherKeys.length - LIST_LIMIT} more`));
    dl.append(...row('Beside it', 'other', ul));
  }

  const lists = h(
    'div',
    { class: 'ckpt-lists' },
    keyList('Missing', 'missing', det.missing ?? [], (k) => h('code', {}, k), LIST_LIMIT),
    keyList('Unexpected', 'unexpected', det.unexpected ?? [], (k) => h('code', {}, k), LIST_LIMIT),
    keyList('Mismatched', 'mismatched', det.mismatched ?? [], (m) => [
      h('code', {}, m.key),
      ` expected [${(m.expected ?? []).join(', ')}], found [${(m.found ?? []).join(', ')}]`,
    ], LIST_LIMIT),
  );

  const parts = [dl, lists];
  if (det.notes?.length) {
    parts.push(h('ul', { class: 'ckpt-notes', dataset: { field: 'notes' } }, det.notes.map((n) => h('li', {}, n))));
  }
  const meta = Object.entries(det.metadata ?? {});
  if (meta.length) {
    const details = h('details', { class: 'ckpt-meta', dataset: { field: 'metadata' } });
    details.append(h('summary', {}, `Metadata (${meta.length} entries)`));
    const mdl = h('dl', { class: 'facts' });
    for (const [k, v] of meta.slice(0, METADATA_LIMIT)) mdl.append(h('dt', {}, k), h('dd', {}, v));
    details.append(mdl);
    if (meta.length > METADATA_LIMIT) details.append(h('p', { class: 'muted' }, `… and ${meta.length - METADATA_LIMIT} more`));
    parts.push(details);
  }
  return parts;
}

/**
 * Wires the button, the file input and the panel. detect(text) posts the header; onDetected(detection, fileName)
 * opens the detected architecture in the explorer. The panel's dataset.state is "reading", "done" or "error".
 */
export function createCheckpoint({ button, input, panel }, { detect, onDetected }) {
  let token = 0;

  function render(state, fileName, ...body) {
    panel.dataset.state = state;
    const head = panelHead('Checkpoint', fileName, 'Close the checkpoint panel', () => {
      panel.hidden = true;
    });
    panel.replaceChildren(head, ...body);
    panel.hidden = false;
  }

  async function open(file) {
    const mine = ++token;
    button.disabled = true;
    render('reading', file.name, h('p', { class: 'muted', role: 'status' }, 'Reading the header…'));
    try {
      const text = await readHeaderText(file);
      const det = await detect(text);
      if (mine !== token) return;
      // A ControlNet, T2I-Adapter or control-LoRA report has a `kind` (controlnet.js shows it).
      render('done', file.name, ...(det.kind ? controlDetectionView(det, file.name) : detectionView(det, file.name)));
      onDetected(det, file.name);
    } catch (err) {
      if (mine !== token) return;
      // The API's own words (its `reason`, and the field it is about), or the page's for a file it refused to send.
      render('error', file.name, ...errorLines('Could not open it: ', err.reason ?? err.message, err.field));
    } finally {
      if (mine === token) button.disabled = false;
    }
  }

  wirePicker(button, input, open);

  return { open };
}
