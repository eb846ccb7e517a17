// lesson_player.js — plays a lesson (lessons.js) in Present mode: each step sets the model, size, opened blocks,
// selection, "Colour by" and compare pair through features.js's applyView (the same path a link takes), and a
// Generate or Knobs state, and shows its Markdown text; → / ← step (a question's answer is revealed by the first →), Esc
// ends. The step is in the URL (?lesson=…&step=N), so a reload or a shared link lands on it. The "Lessons" menu
// opens the shipped lessons, a file or an address, and records the current view as a new step of a lesson being
// written, saved as a file. The skips a step's top-level block saves (down) or takes (up) are marked on the U.
// The "Walk the tensor" button (teach.js) plays the shipped Walk lesson here. All text goes in through textContent
// (markdown.js).

import { h } from './dom.js';
import { renderMarkdown } from './markdown.js';
import { LessonError, readLesson, stepFromView } from './lessons.js';
import { announce, when } from './status.js';

const SHIPPED = 'static/lessons/'; // relative to the page: the same address on the server and on a static site
/** The lesson the "Walk the tensor" button plays. */
export const WALK_LESSON = `${SHIPPED}walk-the-tensor.json`;

/** Where a lesson's address points, resolved against the page (a relative one names a shipped lesson's folder). */
function lessonUrl(ref) {
  return new URL(ref, location.href).href;
}

/**
 * els: {after} (the button the "Lessons" button goes after); hooks: store, applyView(view, preset, size),
 * currentView(), currentGenerate() / currentKnobs() (the Generate / Knobs state on screen, or null),
 * showGenerate(state) / showKnobs(state) (fill and run that view; resolve when drawn), setPresenting(on),
 * reveal(path) (scroll the diagram to a module), diagram (diagram.js: its SVG is where the skips are marked),
 * onPlaying(ref) (a lesson from address `ref` starts playing; null when none plays).
 */
export function createLessonPlayer({ after }, hooks) {
  const { store, applyView, currentView, currentGenerate, currentKnobs, showGenerate, showKnobs, setPresenting, reveal, diagram, onPlaying } = hooks;
  const { state } = store;
  let lesson = null; // the lesson playing
  let source = null; // its address (for the URL), or null for one from a file or the editor
  let at = 0;
  let revealed = false;
  const draft = { lesson: 1, title: 'My lesson', steps: [] };

  // ---- the panel the lesson plays in -------------------------------------------------------------------------
  const stepLine = h('strong', { class: 'lesson-step', id: 'lesson-step' });
  const prev = h('button', { type: 'button', id: 'lesson-prev', 'aria-label': 'Previous step' }, '‹ Previous');
  const next = h('button', { type: 'button', id: 'lesson-next', 'aria-label': 'Next step' }, 'Next ›');
  const close = h('button', { type: 'button', id: 'lesson-close', 'aria-label': 'End the lesson' }, '×');
  const title = h('h2', { class: 'lesson-title', id: 'lesson-title' });
  const text = h('div', { class: 'lesson-text', id: 'lesson-text' });
  const question = h('p', { class: 'lesson-question', id: 'lesson-question', hidden: true });
  const answer = h('p', { class: 'lesson-answer', id: 'lesson-answer', hidden: true });
  const panel = h('section', { class: 'lesson-panel', id: 'lesson-panel', role: 'region', 'aria-label': 'Lesson', hidden: true },
    h('div', { class: 'lesson-head' }, stepLine, prev, next, close), title, text, question, answer);
  document.body.append(panel);

  // ---- the menu: shipped lessons, a file, an address, the editor ----------------------------------------------
  const button = h('button', { type: 'button', id: 'lessons', 'aria-expanded': 'false', 'aria-controls': 'lesson-menu',
    title: 'Play a lesson in Present mode (the shipped ones, a file or an address), or write one' }, 'Lessons');
  after.after(button);
  const list = h('ul', { class: 'lesson-list', id: 'lesson-list' });
  const fileInput = h('input', { type: 'file', id: 'lesson-file', accept: '.json,application/json', 'aria-label': 'Lesson file' });
  const error = h('p', { class: 'error', id: 'lesson-error', role: 'alert', hidden: true });
  const draftTitle = h('input', { id: 'lesson-draft-title', type: 'text', value: draft.title, 'aria-label': 'Lesson title' });
  const stepTitle = h('input', { id: 'lesson-draft-step-title', type: 'text', placeholder: 'Step title', 'aria-label': 'Step title' });
  const stepText = h('textarea', { id: 'lesson-draft-text', rows: 3, placeholder: 'What to say (Markdown)', 'aria-label': 'Step text' });
  const record = h('button', { type: 'button', id: 'lesson-record' }, 'Record this view as a step');
  const playDraft = h('button', { type: 'button', id: 'lesson-play-draft', disabled: true }, 'Play');
  const save = h('button', { type: 'button', id: 'lesson-save', disabled: true }, 'Save…');
  const draftCount = h('span', { class: 'muted', id: 'lesson-draft-count', role: 'status' }, 'no steps yet');
  const menu = h('section', { class: 'lesson-menu', id: 'lesson-menu', role: 'region', 'aria-label': 'Lessons', hidden: true },
    h('h2', {}, 'Lessons'), list,
    h('label', { class: 'field', for: 'lesson-file' }, 'Open a lesson file ', fileInput), error,
    h('h3', {}, 'Write a lesson'),
    h('p', { class: 'hint' }, 'Set up the view (model, size, open blocks, selection, Colour by, compare, a generation or a Knobs run on screen), write what to say, record it.'),
    draftTitle, stepTitle, stepText, h('div', { class: 'lesson-draft-buttons' }, record, playDraft, save, draftCount));
  document.body.append(menu);

  function showMenu(on) {
    menu.hidden = !on;
    button.setAttribute('aria-expanded', on ? 'true' : 'false');
    if (on) fillList();
  }
  button.addEventListener('click', () => showMenu(menu.hidden));

  let listed = false;
  async function fillList() {
    if (listed) return;
    listed = true;
    try {
      const files = await (await fetch(`${SHIPPED}index.json`)).json();
      const items = await Promise.all(files.map(async (file) => {
        const l = readLesson(await (await fetch(`${SHIPPED}${file}`)).text());
        return h('li', {}, h('button', { type: 'button', class: 'lesson-pick', dataset: { lesson: `${SHIPPED}${file}` } }, l.title),
          h('span', { class: 'muted' }, ` ${l.steps.length} steps`));
      }));
      list.replaceChildren(...items);
    } catch (err) {
      showError(err);
    }
  }
  list.addEventListener('click', (ev) => {
    const ref = ev.target.closest('.lesson-pick')?.dataset.lesson;
    if (ref) openUrl(ref, 0);
  });

  function showError(err) {
    error.hidden = !err;
    error.textContent = err ? `Could not open the lesson: ${err.message}` : '';
    announce('lessonError', err ? (err instanceof LessonError ? `${err.step ?? ''}:${err.field}` : 'load') : '');
    if (err) showMenu(true); // the message is in the menu: a lesson from a link that fails opens it
  }

  fileInput.addEventListener('change', async () => {
    const file = fileInput.files?.[0];
    if (!file) return;
    try {
      play(readLesson(await file.text(), presetNames()), null, 0);
    } catch (err) {
      showError(err);
    }
    fileInput.value = '';
  });

  // ---- the editor ----------------------------------------------------------------------------------------------
  function refreshDraft() {
    draftCount.textContent = draft.steps.length ? `${draft.steps.length} step${draft.steps.length > 1 ? 's' : ''}` : 'no steps yet';
    playDraft.disabled = save.disabled = draft.steps.length === 0;
  }
  record.addEventListener('click', () => {
    const n = draft.steps.length + 1;
    const words = { title: stepTitle.value.trim() || `Step ${n}`, text: stepText.value.trim() || '…' };
    draft.steps.push(stepFromView(currentView(), words, currentGenerate?.() ?? null, currentKnobs?.() ?? null));
    stepTitle.value = '';
    stepText.value = '';
    refreshDraft();
  });
  draftTitle.addEventListener('input', () => {
    draft.title = draftTitle.value.trim() || 'My lesson';
  });
  playDraft.addEventListener('click', () => {
    try {
      play(readLesson(JSON.stringify(draft), presetNames()), null, 0);
    } catch (err) {
      showError(err);
    }
  });
  save.addEventListener('click', () => {
    const blob = new Blob([`${JSON.stringify(draft, null, 2)}\n`], { type: 'application/json' });
    const a = h('a', { href: URL.createObjectURL(blob), download: `${draft.title.replace(/[^\w-]+/g, '-').toLowerCase()}.json` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  });

  // ---- playing ---------------------------------------------------------------------------------------------------
  const presetNames = () => state.presets.map((p) => p.name);

  async function openUrl(ref, step) {
    try {
      const response = await fetch(lessonUrl(ref));
      if (!response.ok) throw new Error(`${ref}: ${response.status} ${response.statusText}`);
      play(readLesson(await response.text(), presetNames()), ref, step);
    } catch (err) {
      showError(err);
    }
  }

  // The step goes into the URL a moment after it is shown, not before it is drawn: replaceState cost 15 ms of a
  // step's 100 (Chromium throttles history updates), and arrowing through steps writes once (as features.js does
  // with the hash).
  let urlTimer = null;
  function writeUrlSoon() {
    clearTimeout(urlTimer);
    urlTimer = setTimeout(writeUrl, 150);
  }

  function writeUrl() {
    clearTimeout(urlTimer);
    urlTimer = null;
    const q = new URLSearchParams(location.search);
    if (lesson && source) {
      q.set('lesson', source);
      q.set('step', String(at + 1));
    } else {
      q.delete('lesson');
      q.delete('step');
    }
    const search = q.size ? `?${q}` : '';
    history.replaceState(null, '', `${location.pathname}${search}${location.hash}`);
  }

  function play(l, ref, step) {
    lesson = l;
    source = ref;
    onPlaying?.(ref);
    showError(null);
    showMenu(false);
    go(Math.max(0, Math.min(l.steps.length - 1, step)));
  }

  async function go(i) {
    const step = lesson.steps[i];
    at = i;
    revealed = false;
    panel.hidden = false;
    document.body.classList.add('lesson');
    stepLine.textContent = `${lesson.title} · step ${i + 1} of ${lesson.steps.length}`;
    title.textContent = step.title;
    text.replaceChildren(renderMarkdown(step.text));
    question.hidden = !step.question;
    question.replaceChildren(...(step.question ? [h('b', {}, 'Question: '), step.question] : []));
    answer.hidden = true;
    answer.replaceChildren(...(step.answer ? [h('b', {}, 'Answer: '), step.answer] : []));
    prev.disabled = i === 0;
    next.textContent = step.question ? 'Answer ›' : i === lesson.steps.length - 1 ? 'End' : 'Next ›';
    announce('lessonStep', String(i));
    writeUrlSoon();
    const compare = step.compare ? { preset: step.compare, sameSize: false } : null;
    const shownSize = state.trace?.input?.image_size?.[0] ?? null;
    const sameModel = state.trace && state.preset === step.model && (step.size == null ? state.imageSize == null : shownSize === step.size);
    if (sameModel) {
      // The model on screen already: set only what changes (a new trace would redraw everything, charts too).
      store.setOverlay(step.colour ?? 'none');
      store.setCompare(compare);
      const open = new Set(step.open);
      if (open.size !== state.expanded.size || [...open].some((p) => !state.expanded.has(p))) store.setExpanded([...open]);
      store.select(step.select ?? null);
    } else {
      applyView({
        open: step.open,
        selection: step.select ?? null,
        overlay: step.colour ?? 'none',
        compare,
        names: state.names,
        blockWeights: state.blockWeights,
      }, step.model, step.size ?? null);
    }
    await drawn();
    if (lesson?.steps[at] !== step) return; // the reader stepped on meanwhile
    markSkips(step.select ?? null);
    // A compare pair, a generation or a Knobs run is shown below the diagram: those steps leave Present mode for it.
    setPresenting(Boolean(state.trace) && !(step.compare || step.generate || step.knobs));
    // After Present mode's refit (a frame away): the selected module in the middle of the view.
    if (step.select) requestAnimationFrame(() => requestAnimationFrame(() => reveal(step.select)));
    if (step.compare) document.getElementById('compare')?.scrollIntoView({ block: 'start' });
    if (step.generate) await showGenerate(step.generate);
    if (step.knobs && lesson?.steps[at] === step) await showKnobs(step.knobs);
    announce('lessonShown', String(i));
  }

  // ---- the skips of the step's block, marked on the U -----------------------------------------------------------
  let marked = [];
  let markedFor = null;
  /** Marks the skip the top-level block of `path` saves (its output, kept for the way up) and the one it takes. */
  function markSkips(path) {
    for (const el of marked) el.classList.remove('lesson-save', 'lesson-take');
    marked = [];
    markedFor = path;
    const top = path == null ? null : state.trace?.blocks.find((b) => path === b.path || path.startsWith(`${b.path}.`))?.path;
    if (!top) return;
    const mark = (selector, cls) => {
      for (const el of diagram.element.querySelectorAll(selector)) {
        el.classList.add(cls);
        marked.push(el);
      }
    };
    mark(`g.skip[data-skip-from="${CSS.escape(top)}"]`, 'lesson-save');
    mark(`g.skip[data-skip-to="${CSS.escape(top)}"]`, 'lesson-take');
  }
  // A redraw (a block opened by hand during the step) draws new groups: mark them again.
  store.on('expanded', () => lesson && markSkips(markedFor));

  /** Resolves once the page has drawn what applyView asked for (main.js announces ready after each render). A
   * ready page with no trace could not draw the model (its error is on the page); the step shows its text. */
  function drawn() {
    return when('ready', 'true');
  }

  function forward() {
    const step = lesson.steps[at];
    if (step.question && !revealed) {
      revealed = true;
      answer.hidden = false;
      next.textContent = at === lesson.steps.length - 1 ? 'End' : 'Next ›';
      announce('lessonAnswer', String(at));
      return;
    }
    if (at < lesson.steps.length - 1) go(at + 1);
    else end(true);
  }

  function end(finished = false) {
    if (!lesson) return;
    announce('lessonEnded', finished ? 'finished' : 'closed');
    lesson = null;
    source = null;
    onPlaying?.(null);
    markSkips(null);
    panel.hidden = true;
    document.body.classList.remove('lesson');
    announce('lessonStep', null);
    writeUrl();
    setPresenting(false);
  }

  prev.addEventListener('click', () => lesson && at > 0 && go(at - 1));
  next.addEventListener('click', () => lesson && forward());
  close.addEventListener('click', () => end(false));

  // In the capture phase, before teach.js's keys (which move the focus along the U in Present mode).
  window.addEventListener('keydown', (event) => {
    if (!lesson || /^(INPUT|SELECT|TEXTAREA)$/.test(event.target?.tagName ?? '')) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const keys = { ArrowRight: forward, PageDown: forward, ' ': forward, ArrowLeft: () => at > 0 && go(at - 1), PageUp: () => at > 0 && go(at - 1), Escape: () => end(false) };
    const act = keys[event.key];
    if (!act) return;
    event.preventDefault();
    event.stopPropagation();
    act();
  }, true);

  return {
    /** After the page's first view: play the lesson the URL names (?lesson=…&step=N, N counted from 1). */
    openFromUrl() {
      const q = new URLSearchParams(location.search);
      const ref = q.get('lesson');
      if (ref) openUrl(ref, Math.max(0, (Number(q.get('step')) || 1) - 1));
    },
    play,
    /** Play the lesson at `ref` from its first step, or end it when it is the one playing (the Walk button). */
    toggle(ref) {
      if (lesson && source === ref) end(false);
      else openUrl(ref, 0);
    },
    panel,
  };
}
