// teach.js — the two ways to teach from the page. Presentation mode (the "Present" button, key P): the diagram
// alone fills the window, larger; the arrow keys move through the top-level blocks in execution order, Enter
// opens the focused one, Esc closes it (and leaves the mode when nothing is open). "Walk the tensor": a guided
// tour of the top-level blocks from x to out, one step per block in execution order, with the block's input →
// output shape, one sentence on what it does, and the skip it saves (down stage) or takes (up stage) marked on
// the U; ‹ › buttons and the arrow keys step, the step is in the URL (store.walk → urlstate.js).
// All text goes in through textContent.

import { explain } from './explain.js';
import { hasRole } from './kinds.js';
import { shapeText } from './format.js';
import { announce } from './status.js';

/** The walk's steps: every top-level block in execution order (the trace's blocks list is that order). */
export function walkSteps(ix) {
  return ix.blocks.filter((b) => ix.nodes.has(b.path)).map((b) => b.path);
}

/** The first sentence of a text. */
function firstSentence(text) {
  const m = /^(.+?[.!?])(\s|$)/.exec(text);
  return m ? m[1] : text;
}

/** What a step says: "Step 3 of 27: input_blocks.1", its shapes, and a sentence (pure: the index in, text out). */
export function stepText(ix, path, i, n) {
  const node = ix.nodes.get(path);
  const block = ix.blockByPath.get(path);
  const skipIn = ix.skipInto.get(path);
  const skipOut = ix.trace.skips.find((s) => s.from === path);
  let shapes;
  const out = shapeText(node.outputs?.[0]?.shape);
  if (hasRole(block.category, 'timestep')) {
    // The timesteps' shape is [batch], [1]: shown bare ("t 1") it reads as t = 1, so it is said in words.
    shapes = `t, one timestep per image → ${out}`;
  } else if (skipIn) {
    const running = [...skipIn.concat_shape];
    running[1] -= skipIn.shape[1];
    shapes = `${shapeText(running)} ⧺ skip ${shapeText(skipIn.shape)} from ${skipIn.from} → ${out}`;
  } else {
    shapes = `${shapeText(node.inputs?.[0]?.shape)} → ${out}`;
  }
  let sentence = firstSentence(explain(node, block));
  if (path === ix.blocks.find((b) => b.stage === 'down')?.path) sentence = `The noisy latent x enters here. ${sentence}`;
  if (skipOut) sentence += ` Its output is saved for ${skipOut.to} (skip).`;
  if (block.stage === 'out') sentence += ' Its output is the model\'s prediction, out.';
  return { title: `Step ${i + 1} of ${n}: ${path}`, shapes, sentence };
}

/**
 * Wires presentation mode and the walk. els: {present, walk, panel}; hooks: store, diagram, getIndex, refit()
 * (fit the U to the window again), open(path) / close(path) (toggle a top-level block).
 */
export function createTeach({ present, walk, panel }, { store, diagram, getIndex, refit }) {
  const { state } = store;
  const stepEl = panel.querySelector('.walk-step');
  const shapesEl = panel.querySelector('.walk-shapes');
  const textEl = panel.querySelector('.walk-text');
  let marked = [];

  function setPresenting(on) {
    document.body.classList.toggle('presenting', on);
    present.setAttribute('aria-pressed', on ? 'true' : 'false');
    announce('presenting', on ? 'true' : 'false');
    refit();
    if (on) {
      const first = state.selection && getIndex()?.blockByPath.has(state.selection) ? state.selection : walkSteps(getIndex())[0];
      diagram.focus(first);
    }
  }
  present.addEventListener('click', () => setPresenting(!document.body.classList.contains('presenting')));

  /** Move the focus `delta` top-level blocks along the execution order. */
  function moveFocus(delta) {
    const ix = getIndex();
    if (!ix) return;
    const steps = walkSteps(ix);
    const at = document.activeElement?.closest?.('svg.unet [data-path]')?.getAttribute('data-path');
    const top = at ? ix.nodes.get(at)?.block ?? at : null;
    let i = top ? steps.indexOf(top) : -1;
    i = i < 0 ? 0 : Math.max(0, Math.min(steps.length - 1, i + delta));
    diagram.focus(steps[i]);
    store.select(steps[i]);
  }

  function showStep(step) {
    for (const el of marked) el.classList.remove('walk-current', 'walk-save', 'walk-take');
    marked = [];
    const ix = getIndex();
    if (step == null || !ix) {
      panel.hidden = true;
      walk.setAttribute('aria-pressed', 'false');
      announce('walk', '');
      return;
    }
    const steps = walkSteps(ix);
    const i = Math.min(step, steps.length - 1);
    const path = steps[i];
    const t = stepText(ix, path, i, steps.length);
    stepEl.textContent = t.title;
    shapesEl.textContent = t.shapes;
    textEl.textContent = t.sentence;
    panel.hidden = false;
    walk.setAttribute('aria-pressed', 'true');
    const svg = diagram.element;
    const mark = (sel, cls) => {
      for (const el of svg.querySelectorAll(sel)) {
        el.classList.add(cls);
        marked.push(el);
      }
    };
    mark(`.layer-boxes > g.box[data-path="${CSS.escape(path)}"]`, 'walk-current');
    mark(`g.skip[data-skip-from="${CSS.escape(path)}"]`, 'walk-save');
    mark(`g.skip[data-skip-to="${CSS.escape(path)}"]`, 'walk-take');
    store.select(path);
    panel.querySelector('#walk-prev').disabled = i === 0;
    panel.querySelector('#walk-next').disabled = i === steps.length - 1;
    announce('walk', String(i));
  }

  walk.addEventListener('click', () => store.setWalk(state.walk == null ? 0 : null));
  panel.querySelector('#walk-prev').addEventListener('click', () => store.setWalk(Math.max(0, (state.walk ?? 0) - 1)));
  panel.querySelector('#walk-next').addEventListener('click', () => {
    const n = getIndex() ? walkSteps(getIndex()).length : 0;
    store.setWalk(Math.min(n - 1, (state.walk ?? -1) + 1));
  });
  panel.querySelector('#walk-close').addEventListener('click', () => store.setWalk(null));
  store.on('walk', showStep);
  // A redraw replaces nothing it does not have to, but a new trace draws new groups: mark them again.
  store.on('trace', () => showStep(state.walk));
  store.on('expanded', () => showStep(state.walk));

  document.addEventListener('keydown', (event) => {
    const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(event.target?.tagName ?? '');
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const inDiagram = Boolean(event.target?.closest?.('svg.unet'));
    const presenting = document.body.classList.contains('presenting');
    if (event.key === 'p' || event.key === 'P') {
      event.preventDefault();
      setPresenting(!presenting);
    } else if (state.walk != null && (event.key === 'ArrowRight' || event.key === 'ArrowLeft') && !inDiagram) {
      event.preventDefault();
      panel.querySelector(event.key === 'ArrowRight' ? '#walk-next' : '#walk-prev').click();
    } else if ((presenting || inDiagram) && /^Arrow(Right|Down|Left|Up)$/.test(event.key)) {
      event.preventDefault();
      moveFocus(event.key === 'ArrowRight' || event.key === 'ArrowDown' ? 1 : -1);
    } else if (event.key === 'Escape') {
      const at = document.activeElement?.closest?.('svg.unet [data-path]')?.getAttribute('data-path');
      if (at && state.expanded.has(at)) {
        store.toggle(at);
      } else if (state.walk != null) {
        store.setWalk(null);
      } else if (presenting) {
        setPresenting(false);
      }
    }
  });

  return { setPresenting, showStep };
}
