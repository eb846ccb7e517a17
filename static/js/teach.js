// teach.js — the two ways to teach from the page. Presentation mode (the "Present" button, key P): the diagram
// alone fills the window, larger; the arrow keys move through the top-level blocks in execution order, Enter
// opens the focused one, Esc closes it (and leaves the mode when nothing is open). "Walk the tensor": the button
// plays the shipped lesson of that name (static/lessons/walk-the-tensor.json) in the lesson player, and ends it
// when pressed again; the player steps, marks and keeps the step in the URL.

import { announce } from './status.js';

/** The top-level blocks in execution order (the trace's blocks list is that order). */
export function executionOrder(ix) {
  return ix.blocks.filter((b) => ix.nodes.has(b.path)).map((b) => b.path);
}

/**
 * Wires presentation mode and the Walk button. els: {present, walk}; hooks: store, diagram, getIndex, refit() (fit
 * the U to the window again), toggleWalk() (play the Walk lesson, or end it when it plays).
 */
export function createTeach({ present, walk }, { store, diagram, getIndex, refit, toggleWalk }) {
  const { state } = store;

  function setPresenting(on) {
    document.body.classList.toggle('presenting', on);
    present.setAttribute('aria-pressed', on ? 'true' : 'false');
    announce('presenting', on ? 'true' : 'false');
    refit();
    if (on) {
      const first = state.selection && getIndex()?.blockByPath.has(state.selection) ? state.selection : executionOrder(getIndex())[0];
      diagram.focus(first);
    }
  }
  present.addEventListener('click', () => setPresenting(!document.body.classList.contains('presenting')));
  walk.addEventListener('click', () => toggleWalk());

  /** Move the focus `delta` top-level blocks along the execution order. */
  function moveFocus(delta) {
    const ix = getIndex();
    if (!ix) return;
    const steps = executionOrder(ix);
    const at = document.activeElement?.closest?.('svg.unet [data-path]')?.getAttribute('data-path');
    const top = at ? ix.nodes.get(at)?.block ?? at : null;
    let i = top ? steps.indexOf(top) : -1;
    i = i < 0 ? 0 : Math.max(0, Math.min(steps.length - 1, i + delta));
    diagram.focus(steps[i]);
    store.select(steps[i]);
  }

  // A lesson's keys (lesson_player.js) are taken in the capture phase, before these.
  document.addEventListener('keydown', (event) => {
    const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(event.target?.tagName ?? '');
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const inDiagram = Boolean(event.target?.closest?.('svg.unet'));
    const presenting = document.body.classList.contains('presenting');
    if (event.key === 'p' || event.key === 'P') {
      event.preventDefault();
      setPresenting(!presenting);
    } else if ((presenting || inDiagram) && /^Arrow(Right|Down|Left|Up)$/.test(event.key)) {
      event.preventDefault();
      moveFocus(event.key === 'ArrowRight' || event.key === 'ArrowDown' ? 1 : -1);
    } else if (event.key === 'Escape') {
      const at = document.activeElement?.closest?.('svg.unet [data-path]')?.getAttribute('data-path');
      if (at && state.expanded.has(at)) {
        store.toggle(at);
      } else if (presenting) {
        setPresenting(false);
      }
    }
  });

  return {
    setPresenting,
    /** The Walk button shows whether the Walk lesson plays (the lesson player says when it starts and ends). */
    showWalking(on) {
      walk.setAttribute('aria-pressed', on ? 'true' : 'false');
    },
  };
}
