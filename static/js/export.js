// export.js — downloads made in the browser: the diagram as SVG (styles inlined, so it looks the same anywhere)
// and PNG (that SVG drawn on a canvas), the trace as JSON, the module table as CSV, and the text summary (the
// server's, POST /api/summary, so it is the CLI's table). Each file leaves through a Blob and a temporary <a download>.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Hand `blob` to the browser as a download called `name`. */
export function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // The download has started by the next task; the URL is not needed after that.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// The presentation properties the stylesheet sets on the diagram. Inherited ones are written only where they
// differ from the parent, so the file stays small; the others wherever they are not the initial value.
const INHERITED = [
  'fill', 'fill-opacity', 'stroke', 'stroke-width', 'stroke-dasharray', 'stroke-opacity', 'stroke-linejoin',
  'stroke-linecap', 'paint-order', 'font-family', 'font-size', 'font-weight', 'font-style', 'text-anchor',
];
const OWN = { opacity: '1' };

function inlineStyles(src, dst, parentStyle) {
  const cs = getComputedStyle(src);
  const decl = [];
  for (const prop of INHERITED) {
    const v = cs.getPropertyValue(prop);
    if (v && (!parentStyle || parentStyle[prop] !== v)) decl.push(`${prop}:${v}`);
  }
  for (const [prop, initial] of Object.entries(OWN)) {
    const v = cs.getPropertyValue(prop);
    if (v && v !== initial) decl.push(`${prop}:${v}`);
  }
  if (decl.length) dst.setAttribute('style', decl.join(';'));
  const mine = Object.fromEntries(INHERITED.map((p) => [p, cs.getPropertyValue(p)]));
  for (let i = 0; i < src.children.length; i += 1) inlineStyles(src.children[i], dst.children[i], mine);
}

/**
 * The diagram as a standalone SVG document: every box drawn (culling off for the moment), at zoom 1, on white,
 * with each element's computed style written into its style attribute. `diagram` is a createDiagram() instance.
 */
export function diagramSvgText(diagram) {
  const scene = diagram.scene;
  diagram.setFullDraw(true);
  try {
    const src = diagram.element;
    const copy = src.cloneNode(true);
    inlineStyles(src, copy, null);
    copy.setAttribute('xmlns', SVG_NS);
    copy.setAttribute('width', scene.w);
    copy.setAttribute('height', scene.h);
    copy.setAttribute('viewBox', `0 0 ${scene.w} ${scene.h}`);
    for (const el of copy.querySelectorAll('[tabindex]')) el.removeAttribute('tabindex');
    const bg = document.createElementNS(SVG_NS, 'rect');
    bg.setAttribute('width', '100%');
    bg.setAttribute('height', '100%');
    bg.setAttribute('fill', '#ffffff');
    copy.insertBefore(bg, copy.firstChild);
    return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(copy)}\n`;
  } finally {
    diagram.setFullDraw(false);
  }
}

/** Draw SVG text onto a canvas: `scale` × its size, less if the canvas would be too big for the browser. */
export async function svgToPng(svgText, w, h, scale = 2) {
  const MAX_SIDE = 16384;
  const MAX_AREA = 120e6;
  const s = Math.min(scale, MAX_SIDE / w, MAX_SIDE / h, Math.sqrt(MAX_AREA / (w * h)));
  const url = URL.createObjectURL(new Blob([svgText], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = Math.max(1, Math.floor(w * s));
    canvas.height = Math.max(1, Math.floor(h * s));
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    return await new Promise((resolve, reject) => {
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the canvas could not be encoded'))), 'image/png');
    });
  } finally {
    URL.revokeObjectURL(url);
  }
}

const CSV_COLUMNS = [
  'path', 'kind', 'category', 'output_shape', 'params', 'flops', 'attention_flops', 'activation_bytes', 'time_ms',
];

function csvCell(v) {
  const s = v == null ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** One row per module (the root's path is empty), shapes as 1x320x64x64 (several outputs joined by ";"). */
export function modulesCsv(trace) {
  const lines = [CSV_COLUMNS.join(',')];
  for (const n of trace.nodes) {
    const shape = (n.outputs ?? []).map((t) => t.shape.join('x')).join(';');
    const row = [n.path, n.kind, n.category, shape, n.params, n.flops, n.flops_by_op?.attention ?? 0, n.activation_bytes, n.time_ms];
    lines.push(row.map(csvCell).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** The file name stem for a model and size: "sdxl-base-1024". */
export function fileStem(model, trace) {
  const size = trace.input?.image_size?.[0] ?? `latent${trace.input?.sample_size?.[0] ?? ''}`;
  return `${String(model ?? trace.preset ?? 'unet').replace(/[^A-Za-z0-9._-]+/g, '_')}-${size}`;
}

/** Run one export kind ('svg', 'png', 'json', 'csv', 'summary') for the diagram and trace on screen;
 * getSummary() resolves to the server's summary text of the same model and size. */
export async function exportAs(kind, { diagram, trace, model, getSummary }) {
  const stem = fileStem(model, trace);
  if (kind === 'svg') {
    download(`${stem}.svg`, new Blob([diagramSvgText(diagram)], { type: 'image/svg+xml' }));
  } else if (kind === 'png') {
    const { w, h } = diagram.scene;
    download(`${stem}.png`, await svgToPng(diagramSvgText(diagram), w, h));
  } else if (kind === 'json') {
    download(`${stem}-trace.json`, new Blob([JSON.stringify(trace, null, 1)], { type: 'application/json' }));
  } else if (kind === 'csv') {
    download(`${stem}-modules.csv`, new Blob([modulesCsv(trace)], { type: 'text/csv' }));
  } else if (kind === 'summary') {
    // As `sdunet-explorer summary` prints it (depth 2, with print()'s final newline: the server adds it).
    download(`${stem}-summary.txt`, new Blob([await getSummary()], { type: 'text/plain' }));
  } else {
    throw new Error(`unknown export ${kind}`);
  }
}
