// A lesson's step as the editor records it (static/js/lessons.js stepFromView) reads back through the same checks a
// file gets, Generate and Knobs states included, and a bad Knobs state is refused naming the step and the field.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LessonError, parseLesson, stepFromView } from '../../static/js/lessons.js';

const VIEW = { preset: 'sd1', size: 512, selection: 'out', open: [], overlay: 'none', compare: null };
const GENERATION = { prompt: 'a purple triangle', seed: 3, steps: 8, guidance: 2.5, sampler: 'ddim', step: 5 };
const RUN = { prompt: 'a purple triangle', seed: 0, steps: 6, guidance: 3, interventions: [{ kind: 'cache', every: 3, from_step: 0 }] };

const lesson = (...steps) => ({ lesson: 1, title: 'T', steps });

test('a recorded step carries the generation and the Knobs run on screen, and reads back', () => {
  const step = stepFromView(VIEW, { title: 'a', text: 'b' }, GENERATION, RUN);
  assert.deepEqual(step.generate, GENERATION);
  assert.deepEqual(step.knobs, RUN);
  assert.notEqual(step.knobs.interventions, RUN.interventions); // a copy: a later run does not change the draft
  const back = parseLesson(JSON.parse(JSON.stringify(lesson(step))), ['sd1']);
  assert.deepEqual(back.steps[0].generate, GENERATION);
  assert.deepEqual(back.steps[0].knobs, RUN);
});

test('with nothing on screen, a recorded step has neither', () => {
  const step = stepFromView(VIEW, { title: 'a', text: 'b' });
  assert.equal('generate' in step, false);
  assert.equal('knobs' in step, false);
});

test('a bad Knobs state is refused naming the step and the field', () => {
  const bad = (knobs, field) => {
    const ok = { title: 'a', text: 'b', model: 'sd1' };
    assert.throws(() => parseLesson(lesson(ok, { ...ok, knobs })), (e) => e instanceof LessonError && e.step === 1 && e.field === field);
  };
  bad({ ...RUN, interventions: [] }, 'knobs.interventions');
  bad({ ...RUN, interventions: [{ every: 3 }] }, 'knobs.interventions');
  bad({ ...RUN, seed: '3' }, 'knobs.seed');
  bad({ ...RUN, colour: 'red' }, 'knobs.colour');
  bad({ ...RUN, prompt: ' ' }, 'knobs.prompt');
});
