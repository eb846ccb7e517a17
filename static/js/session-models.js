// session-models.js — a model opened from a checkpoint or a diffusers config lives in this tab's sessionStorage, so
// that a reload (whose URL names it) finds it again. The file itself is never stored, only the architecture the
// server detected (the store's model entry).

const MODEL_STORE = 'sdunet:model:';

/** Keep `entry` ({key, label, config | control, ...}) for this tab. */
export function rememberModel(entry) {
  try {
    sessionStorage.setItem(MODEL_STORE + entry.key, JSON.stringify(entry));
  } catch {
    // Storage full or disabled: the model still works until the page is closed.
  }
}

/** Put the kept model `key` back into the store, unless it is there already or was never kept. */
export function restoreModel(store, key) {
  if (!key || store.state.models.has(key)) return;
  try {
    const entry = JSON.parse(sessionStorage.getItem(MODEL_STORE + key) ?? 'null');
    if (entry?.key === key && (entry.config || entry.control)) store.addModel(entry);
  } catch {
    // A damaged entry: fall back to the default model.
  }
}
