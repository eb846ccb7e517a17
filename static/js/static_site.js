// static_site.js — the page without a server (issue 27): `sdunet-explorer export-site DIR` writes the page, its
// assets and the API's answers to the requests it precomputed, each in a file named by the request's key. A page
// with <meta name="sdunet-static" content="data/"> asks those files instead of /api/; what was not precomputed
// (a profile, a file's model, a new caption) says it needs the server. No DOM beyond reading the meta tag.
//
// The key is one rule for every request, mirrored by app/site_export.py (request_key, file_name): the method, the
// path, the query's pairs sorted by name and the JSON body with its keys sorted, as compact JSON; the file is the
// FNV-1a 64-bit hash of its UTF-8 bytes in hex. A test exports a site and drives this page through it, so a
// drift between the two sides shows as a view that says "needs the server" where it should draw.

/** The folder of precomputed answers (relative to the page), or null when a server answers. */
export const STATIC_BASE = globalThis.document?.querySelector('meta[name="sdunet-static"]')?.getAttribute('content') ?? null;

/** JSON with every object's keys sorted, no spaces: one text per value, whatever order its keys were made in. */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** The key of a request: [method, path, sorted query pairs, body or null] as canonical JSON. */
export function requestKey(method, url, body) {
  const u = new URL(url, 'http://site.invalid');
  // Sorted by name only; a name given twice keeps its values' order (Array.prototype.sort is stable).
  const query = [...u.searchParams].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  return canonical([method, u.pathname, query, body ?? null]);
}

const MASK = (1n << 64n) - 1n;

/** FNV-1a, 64 bits, of a text's UTF-8 bytes, as 16 hex digits. */
export function fnv1a64(text) {
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & MASK;
  }
  return hash.toString(16).padStart(16, '0');
}

let index = null; // Promise of data/index.json's answers: request file name → the file holding the answer

/** The file that holds a request's answer, or null when the site has none. Its name is "<hash>.json" (".txt" for a
 * text answer); the index maps it to the file (two requests with one answer share a file). The index is read
 * first so a missing answer is never fetched: its 404 would be a console error. */
export async function answerFile(method, url, body, accept = 'application/json') {
  index ??= fetch(`${STATIC_BASE}index.json`).then((r) => (r.ok ? r.json() : { answers: {} })).then((d) => d.answers);
  const name = `${fnv1a64(requestKey(method, url, body))}.${accept === 'text/plain' ? 'txt' : 'json'}`;
  const file = (await index)[name];
  return file ? `${STATIC_BASE}${file}` : null;
}

// What a reader was doing, in words, for the message of a request this site has no answer to.
const NEEDS = [
  ['/api/profile', 'Profiling (timing every block on a machine)'],
  ['/api/generate', 'This generation (only the shipped captions at the default seed, steps, guidance and sampler are in this site)'],
  ['/api/activations', 'Capturing activations (a forward of the model)'],
  ['/api/checkpoint', 'Reading a checkpoint'],
  ['/api/lora', 'Reading a LoRA file'],
  ['/api/names/block-weights', 'Block weights'],
  ['/api/weights', 'A weights file'],
  ['/api/trace', 'This model at this size (this site holds the traces it was exported with)'],
  ['/api/compare', 'This comparison'],
  ['/api/scaling', 'Scaling this model'],
];

/** The error a view shows for a request with no precomputed answer: what needs the server, and how to start it. */
export function needsServer(method, url) {
  const path = new URL(url, 'http://site.invalid').pathname;
  const what = NEEDS.find(([prefix]) => path.startsWith(prefix))?.[1] ?? `${method} ${path}`;
  const error = new Error(`${what} needs the server: this is a static copy of the page. Run \`sdunet-explorer serve\` and open the address it prints.`);
  error.status = 503;
  error.field = null;
  error.reason = error.message;
  error.needsServer = true;
  return error;
}
