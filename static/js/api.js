// api.js — the page's only door to the server: fetch calls and the profile event stream. No DOM, no state.
// Errors come back as {detail, field, reason}; each call throws an Error carrying the server's detail.
// On a static copy of the page (static_site.js) the same calls read precomputed answers from files instead.

import { STATIC_BASE, answerFile, needsServer } from './static_site.js';

/** JSON text sent as it is (a checkpoint's header: the server, not the page, judges whether it parses). */
class RawJson {
  constructor(text) {
    this.text = text;
  }
}

/** A static site's answer to a request: its precomputed file, or the error that says it needs the server. */
async function staticAnswer(method, url, body, accept) {
  if (accept === 'application/octet-stream') throw needsServer(method, url); // a file to download: made on request
  const payload = body instanceof RawJson ? body.text : body;
  const file = await answerFile(method, url, payload, accept);
  const response = file && (await fetch(file));
  if (!response?.ok) throw needsServer(method, url);
  return accept === 'application/json' ? response.json() : response.text();
}

export async function request(method, url, body, accept = 'application/json') {
  if (STATIC_BASE != null) return staticAnswer(method, url, body, accept);
  const init = { method, headers: { Accept: accept } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = body instanceof RawJson ? body.text : JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (response.ok && accept === 'application/octet-stream') return response.blob(); // a file; errors come as JSON
  const text = await response.text();
  if (response.ok && accept !== 'application/json') return text;
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = data && (data.detail ?? data.reason);
    const error = new Error(typeof detail === 'string' ? detail : `${method} ${url} failed: ${response.status}`);
    error.status = response.status;
    error.field = data?.field ?? null;
    error.reason = typeof data?.reason === 'string' ? data.reason : null;
    throw error;
  }
  return data;
}

/** GET /api/presets → [{name, title, family, num_parameters, reference_input, latent_factor}]. */
export function getPresets() {
  return request('GET', '/api/presets');
}

/** POST /api/trace → the trace JSON (docs/trace-schema.md), of a preset or a config (our field names). */
export function getTrace({ preset, config, imageSize }) {
  const body = config ? { config } : { preset };
  if (imageSize) body.image_size = [imageSize, imageSize];
  return request('POST', '/api/trace', body);
}

/** POST /api/summary → the text table of `sdunet-explorer summary` for the same model and size. */
export function getSummary({ preset, config, imageSize, depth = 2 }) {
  const body = config ? { config } : { preset };
  if (imageSize) body.image_size = [imageSize, imageSize];
  return request('POST', `/api/summary?depth=${depth}`, body, 'text/plain');
}

/** POST /api/profile → {id}: a timed run queued on the server. */
export function startProfile({ preset, config, imageSize, device = 'cpu', dtype = 'float32', repeats = 2, useWeights = false }) {
  const body = { ...(config ? { config } : { preset }), device, dtype, repeats };
  if (useWeights) body.use_weights = true;
  if (imageSize) body.image_size = [imageSize, imageSize];
  return request('POST', '/api/profile', body);
}

/** GET /api/profile/{id} → {id, state, progress, position, result, error}. */
export function getProfile(id) {
  return request('GET', `/api/profile/${encodeURIComponent(id)}`);
}

/**
 * Follow a profile job's Server-Sent Events. onProgress gets {phase, done, total}; onEnd gets {state, error}
 * once. Returns a function that stops listening. The stream is closed on 'end' so the browser does not reconnect.
 */
export function followProfile(id, { onProgress, onEnd }) {
  const source = new EventSource(`/api/profile/${encodeURIComponent(id)}/events`);
  let ended = false;
  const finish = (payload) => {
    if (ended) return;
    ended = true;
    source.close();
    onEnd(payload);
  };
  source.addEventListener('progress', (event) => onProgress(JSON.parse(event.data)));
  source.addEventListener('end', (event) => finish(JSON.parse(event.data)));
  // A dropped stream is not fatal: the caller polls the job for its final state.
  source.onerror = () => finish(null);
  return () => {
    ended = true;
    source.close();
  };
}

/** GET /api/source → the class names whose source the server shows (ours, not PyTorch's). */
export function getSourceKinds() {
  return request('GET', '/api/source');
}

/** GET /api/source/{kind} → {kind, module, source}. */
export function getSource(kind) {
  return request('GET', `/api/source/${encodeURIComponent(kind)}`);
}

/** POST /api/checkpoint/detect with a safetensors header's JSON text → the detected architecture and fit. */
export function detectCheckpoint(headerText) {
  return request('POST', '/api/checkpoint/detect', new RawJson(headerText));
}

/** POST /api/diffusers-names → {supported, reason, names: {our path: diffusers path | null}}. */
export function getDiffusersNames({ preset, config }) {
  return request('POST', '/api/diffusers-names', config ? { config } : { preset });
}

/** GET /api/weights → the weights file the server was started with (404 when none). */
export function getWeights() {
  return request('GET', '/api/weights');
}

/** GET /api/weights/stats → statistics and a histogram of one module's weights. */
export function getWeightStats(path) {
  return request('GET', `/api/weights/stats?path=${encodeURIComponent(path)}`);
}

// ---- activations (issue 16): the catalog of points, one captured forward, the export ----------------------------

/** POST /api/activations/catalog with a model body ({preset} | {config} | {use_weights}, image_size) → the points. */
export function getActivationCatalog(body) {
  return request('POST', '/api/activations/catalog', body);
}

/** POST /api/activations/capture → statistics, previews and word heat maps of one forward at the chosen points. */
export function captureActivations(body) {
  return request('POST', '/api/activations/capture', body);
}

/** POST /api/activations/export → a Blob: the .safetensors file of the chosen points' full tensors. */
export function exportActivations(body) {
  return request('POST', '/api/activations/export', body, 'application/octet-stream');
}

// ---- analysis ---------------------------------------------------------------------------------------------------

/** GET /api/compare → two presets side by side: totals, per stage, per level, per block kind, differences. */
export function getCompare({ a, b, imageSize }) {
  const q = new URLSearchParams({ a, b });
  if (imageSize) q.set('image_size', imageSize);
  return request('GET', `/api/compare?${q}`);
}

/** GET /api/scaling → one preset's FLOPs, memory (and times, when profiled) at each square image size. */
export function getScaling({ preset, sizes }) {
  const q = new URLSearchParams({ preset, sizes: sizes.join(',') });
  return request('GET', `/api/scaling?${q}`);
}

// ---- names, block weights, LoRA files (issue 14) -------------------------------------------------------------

/** A /api/trace-style model body: a preset's name or a config (our field names). */
function modelBody({ preset, config }) {
  return config ? { config } : { preset };
}

/** POST /api/names → every block and module in every naming scheme, the ID lists, presets and kohya's slots. */
export function getNames(model) {
  return request('POST', '/api/names', modelBody(model));
}

/** POST /api/names/block-weights → each block's weight under a spec (a preset, IDs, ranges or a vector). A bad
 * spec throws with the server's reason (field "spec"). */
export function getBlockWeights(model, spec) {
  return request('POST', '/api/names/block-weights', { ...modelBody(model), spec });
}

/**
 * POST /api/lora/detect with a LoRA's header: `body` is the header's JSON text as read from the file (sent as it
 * is, so the server judges it), or {header, alphas} when the page read the alpha scalars too. Query: `preset`
 * (match against it), `imageSize` (pixels, for the FLOPs), `flops` (false: skip the trace, answer faster).
 */
export function detectLora(body, { preset = null, imageSize = null, flops = true } = {}) {
  const q = new URLSearchParams();
  if (preset) q.set('preset', preset);
  if (imageSize) for (const s of imageSize) q.append('image_size', s);
  if (!flops) q.set('flops', 'false');
  const payload = typeof body === 'string' ? new RawJson(body) : body;
  return request('POST', `/api/lora/detect${q.size ? `?${q}` : ''}`, payload);
}

/** GET /api/twin → the trained twin: {preset, image_size, context_tokens, vocabulary, examples, samplers, defaults, training}. */
export function getTwin() {
  return request('GET', '/api/twin');
}

/** POST /api/generate → the twin's picture, the reader's verdict and every step's x_t, ε̂ and x̂₀. */
export function generate(body) {
  return request('POST', '/api/generate', body);
}

/** GET /api/probes/models → what this server can probe: [{model, file, max_images, image_size, usable, reason}]. */
export function getProbeModels() {
  return request('GET', '/api/probes/models');
}

/** POST /api/ablation → {id, state, progress}: each block (or skip) of the twin removed in turn, as a job. */
export function startAblation(body) {
  return request('POST', '/api/ablation', body);
}

/** GET /api/ablation/{id} → {state, progress: {done, total}, error, result: {effects, ranking}}. */
export function getAblation(id) {
  return request('GET', `/api/ablation/${encodeURIComponent(id)}`);
}

/** POST /api/probes → {id, state}: a probe run queued (poll it with getProbes). */
export function startProbes(body) {
  return request('POST', '/api/probes', body);
}

/** GET /api/probes/{id} → {id, state, progress: {phase, done, total}, error, result}. */
export function getProbes(id) {
  return request('GET', `/api/probes/${encodeURIComponent(id)}`);
}

/** POST /api/correspondence → the target pixel most like a source pixel, the similarity map and both pictures. */
export function correspondence(body) {
  return request('POST', '/api/correspondence', body);
}

// ---- knobs on the server's checkpoint (issue 26): a job, like a probe run ----------------------------------------

/** POST /api/interventions → 202 {id, state, progress}: the knobs on the server's --weights model, queued. */
export function startIntervention(body) {
  return request('POST', '/api/interventions', body);
}

/** GET /api/interventions/{id} → {state, progress: {phase, done, total}, error, result}. */
export function getIntervention(id) {
  return request('GET', `/api/interventions/${encodeURIComponent(id)}`);
}
