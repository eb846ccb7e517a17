// lessons.js — a lesson file (docs/lessons.md): its schema, read and checked. Pure: JSON in, a lesson out or a
// LessonError naming the step and the field; no DOM, no requests. The player (lesson_player.js) shows it.
//
// A lesson: {lesson: 1, title, description?, steps: [step, ...]}; a step: {title, model, size?, select?, open?,
// colour?, compare?, generate?, knobs?, text, question?, answer?}. Unknown fields are refused (a misspelt "colour" would
// otherwise be dropped without a word), and so is a step that is not what its field says.

import { OVERLAYS } from './config.js';

export const LESSON_VERSION = 1;
const LESSON_FIELDS = new Set(['lesson', 'title', 'description', 'steps']);
const STEP_FIELDS = new Set(['title', 'model', 'size', 'select', 'open', 'colour', 'compare', 'generate', 'knobs', 'text', 'question', 'answer']);
const GENERATE_FIELDS = { prompt: 'string', seed: 'number', steps: 'number', guidance: 'number', sampler: 'string', step: 'number' };
// A Knobs run: the generation it changes and its one intervention (the server checks the intervention's own fields).
const KNOBS_FIELDS = { prompt: 'string', seed: 'number', steps: 'number', guidance: 'number', interventions: 'object' };
// "Colour by" keys a lesson may name: the overlays drawn from the trace (the painted ones need a file or a spec).
const COLOURS = OVERLAYS.filter((o) => !o.external && o.key !== 'time').map((o) => o.key);

/** A lesson that cannot be played: `step` is the step's index (0-based; null for the lesson itself). */
export class LessonError extends Error {
  constructor(step, field, reason) {
    super(`${step == null ? 'lesson' : `step ${step + 1}`}: "${field}" ${reason}`);
    this.name = 'LessonError';
    this.step = step;
    this.field = field;
  }
}

const isText = (v) => typeof v === 'string' && v.trim() !== '';

function checkStep(raw, i, presets) {
  const fail = (field, reason) => {
    throw new LessonError(i, field, reason);
  };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new LessonError(i, 'steps', 'must be an object');
  for (const key of Object.keys(raw)) if (!STEP_FIELDS.has(key)) fail(key, `is not a step field (${[...STEP_FIELDS].join(', ')})`);
  if (!isText(raw.title)) fail('title', 'must be a non-empty text');
  if (!isText(raw.text)) fail('text', 'must be a non-empty text (Markdown)');
  if (!isText(raw.model)) fail('model', 'must name a preset (sd1, sdxl-base, ...)');
  if (presets && !presets.includes(raw.model)) fail('model', `names no preset: "${raw.model}" (${presets.join(', ')})`);
  if (raw.size !== undefined && !(Number.isInteger(raw.size) && raw.size > 0)) fail('size', 'must be an image size in pixels (a whole number)');
  if (raw.select !== undefined && !isText(raw.select)) fail('select', 'must be a module path (input_blocks.1.1)');
  if (raw.open !== undefined && !(Array.isArray(raw.open) && raw.open.every(isText))) fail('open', 'must be a list of block paths');
  if (raw.colour !== undefined && !COLOURS.includes(raw.colour)) fail('colour', `must be one of ${COLOURS.join(', ')}`);
  if (raw.compare !== undefined) {
    if (!isText(raw.compare)) fail('compare', 'must name a preset to compare with');
    if (presets && !presets.includes(raw.compare)) fail('compare', `names no preset: "${raw.compare}"`);
  }
  if (raw.generate !== undefined) {
    const g = raw.generate;
    if (!g || typeof g !== 'object' || Array.isArray(g)) fail('generate', 'must be an object ({prompt, seed, steps, guidance, sampler, step})');
    for (const [key, value] of Object.entries(g)) {
      if (!(key in GENERATE_FIELDS)) fail(`generate.${key}`, `is not a Generate field (${Object.keys(GENERATE_FIELDS).join(', ')})`);
      if (typeof value !== GENERATE_FIELDS[key]) fail(`generate.${key}`, `must be a ${GENERATE_FIELDS[key]}`);
    }
    if (!isText(g.prompt)) fail('generate.prompt', 'must be a caption in the twin\'s words');
  }
  if (raw.knobs !== undefined) {
    const k = raw.knobs;
    if (!k || typeof k !== 'object' || Array.isArray(k)) fail('knobs', 'must be an object ({prompt, seed, steps, guidance, interventions})');
    for (const [key, value] of Object.entries(k)) {
      if (!(key in KNOBS_FIELDS)) fail(`knobs.${key}`, `is not a Knobs field (${Object.keys(KNOBS_FIELDS).join(', ')})`);
      if (typeof value !== KNOBS_FIELDS[key]) fail(`knobs.${key}`, `must be a ${KNOBS_FIELDS[key] === 'object' ? 'list' : KNOBS_FIELDS[key]}`);
    }
    if (!isText(k.prompt)) fail('knobs.prompt', 'must be a caption in the twin\'s words');
    const ivs = k.interventions;
    if (!Array.isArray(ivs) || ivs.length !== 1 || !ivs[0] || typeof ivs[0] !== 'object' || !isText(ivs[0].kind)) {
      fail('knobs.interventions', 'must be a list of one intervention ({kind, ...}, as the Knobs view runs it)');
    }
  }
  if (raw.question !== undefined && !isText(raw.question)) fail('question', 'must be a non-empty text');
  if (raw.answer !== undefined && !isText(raw.answer)) fail('answer', 'must be a non-empty text');
  if ((raw.question === undefined) !== (raw.answer === undefined)) fail(raw.question === undefined ? 'question' : 'answer', 'comes with an answer (a question and its answer go together)');
  return { ...raw, open: raw.open ?? [] };
}

/**
 * A lesson from its parsed JSON, checked: every step is playable or a LessonError says which step and field are
 * wrong. presets: the preset names models may be (null: not checked here).
 */
export function parseLesson(raw, presets = null) {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new LessonError(null, 'lesson', 'must be a JSON object');
  for (const key of Object.keys(raw)) if (!LESSON_FIELDS.has(key)) throw new LessonError(null, key, `is not a lesson field (${[...LESSON_FIELDS].join(', ')})`);
  if (raw.lesson !== LESSON_VERSION) throw new LessonError(null, 'lesson', `must be ${LESSON_VERSION} (the schema version)`);
  if (!isText(raw.title)) throw new LessonError(null, 'title', 'must be a non-empty text');
  if (raw.description !== undefined && typeof raw.description !== 'string') throw new LessonError(null, 'description', 'must be a text');
  if (!Array.isArray(raw.steps) || raw.steps.length === 0) throw new LessonError(null, 'steps', 'must be a non-empty list');
  return { ...raw, steps: raw.steps.map((s, i) => checkStep(s, i, presets)) };
}

/** A lesson from a file's text: its JSON's syntax error is a LessonError too. */
export function readLesson(text, presets = null) {
  let raw;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new LessonError(null, 'lesson', `is not JSON: ${err.message}`);
  }
  return parseLesson(raw, presets);
}

/** A step made of a view of the page (features.js currentView()), the Generate view's state when a generation is on
 * screen (generate.js current(), or null) and the Knobs view's when a run is (knobs.js current()): what the editor
 * records. */
export function stepFromView(view, { title, text }, generate = null, knobs = null) {
  const step = { title, model: view.preset, text };
  if (view.size) step.size = view.size;
  if (view.selection) step.select = view.selection;
  if (Array.isArray(view.open) && view.open.length) step.open = [...view.open];
  if (view.overlay && COLOURS.includes(view.overlay) && view.overlay !== 'none') step.colour = view.overlay;
  if (view.compare?.preset) step.compare = view.compare.preset;
  if (generate) {
    step.generate = {};
    for (const key of Object.keys(GENERATE_FIELDS)) if (generate[key] != null) step.generate[key] = generate[key];
  }
  if (knobs) {
    step.knobs = {};
    for (const key of Object.keys(KNOBS_FIELDS)) if (knobs[key] != null) step.knobs[key] = structuredClone(knobs[key]);
  }
  return step;
}
