// profiling.js — the "Profile" button: starts a timing job on the server (POST /api/profile, CPU, two repeats,
// with the server's weights when they are the architecture on screen), follows its progress, shows it in the
// progress bar and status line, and puts the measured trace on screen ("Cards show" switches to time).
// The job's own record is the truth: when the stream ends the page polls it until it is final.

const FINAL = ['done', 'failed', 'cancelled'];

/**
 * store: the page's store; api: api.js; weights: weights.js's object; traceCache: main.js's "preset@size" → trace
 * map (the measured trace goes in it). els: {button, bar, status}.
 */
export function createProfiling({ store, api, weights, traceCache }, { button, bar, status }) {
  const { state } = store;
  let stop = null; // closes the progress stream of the job running, if any

  store.on('profile', (p) => {
    const running = p.state === 'queued' || p.state === 'running' || p.state === 'starting';
    button.disabled = running;
    bar.hidden = !running;
    if (p.total) {
      bar.max = p.total;
      bar.value = p.done;
    } else {
      bar.removeAttribute('value');
    }
    if (running) status.textContent = `${p.phase || p.state}${p.total ? ` ${p.done}/${p.total}` : ''}…`;
    else if (p.state === 'done') status.textContent = 'Measured: times are on the blocks and in the FLOPs chart.';
    else if (p.state === 'failed' || p.state === 'cancelled') status.textContent = `Profile ${p.state}: ${p.error ?? ''}`;
    else status.textContent = '';
  });

  /** After the stream ends: poll the job until it is final, then show its trace if the model is still on screen. */
  async function finish(id, key, preset, end) {
    stop = null;
    try {
      let job = await api.getProfile(id);
      while (!FINAL.includes(job.state)) {
        await new Promise((r) => setTimeout(r, 500));
        job = await api.getProfile(id);
      }
      if (job.state !== 'done') {
        store.setProfile({ state: job.state, error: job.error ?? end?.error ?? null });
        return;
      }
      traceCache.set(key, job.result);
      store.setProfile({ state: 'done', error: null });
      if (state.preset === preset) {
        store.setTrace(job.result);
        store.setMetric('time');
      }
    } catch (err) {
      store.setProfile({ state: 'failed', error: err.message });
    }
  }

  async function run() {
    if (!state.trace) return;
    const { preset } = state;
    const imageSize = state.trace.input?.image_size?.[0] ?? state.imageSize;
    const key = `${preset}@${imageSize ?? ''}`;
    stop?.();
    store.setProfile({ state: 'queued', phase: 'queued', done: 0, total: 0, error: null });
    let id;
    try {
      const custom = state.models.get(preset);
      // With the server's weights file when the model on screen is its architecture, else random weights.
      const useWeights = weights.matches(state.trace.config);
      // A ControlNet preset's entry has no config: the UNet drawn (and timed) is its base preset.
      const body = { preset: custom && !custom.config ? custom.preset : preset, config: custom?.config, imageSize, device: 'cpu', repeats: 2, useWeights };
      ({ id } = await api.startProfile(body));
    } catch (err) {
      store.setProfile({ state: 'failed', error: err.message });
      return;
    }
    stop = api.followProfile(id, {
      onProgress: (p) => store.setProfile({ state: p.state ?? 'running', phase: p.phase ?? '', done: p.done ?? 0, total: p.total ?? 0 }),
      onEnd: (end) => finish(id, key, preset, end),
    });
  }

  button.addEventListener('click', run);
  return { run };
}
