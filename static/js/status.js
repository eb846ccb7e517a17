/**
 * The page's one readiness signal. Every view announces its state here, under one of the topics below, and nowhere
 * else: tests and benches wait on it (the attribute `body[data-<topic>]`, or the `sdunet:status` event), and no
 * module reads it back as its own state. A topic missing from TOPICS is refused, so the table stays the full list.
 */

/** Topic → what its values mean. */
export const TOPICS = Object.freeze({
  ready: "'true' once the diagram of the current request is drawn, 'false' while one loads",
  preset: 'the preset (or file) whose diagram is drawn',
  firstDrawMs: 'milliseconds from navigation to the first diagram on screen (the page bench)',
  renderMs: 'milliseconds the last diagram render took',
  charts: "'true' once the charts of the current trace are drawn",
  compare: "'loading' | 'true' | 'error' | 'off': the comparison view",
  scaling: "'none' | 'loading' | 'true' | 'error': the scaling chart",
  url: "'true' once the URL's view has been applied",
  control: 'the ControlNet overlay on the U: its preset, or empty',
  names: "'true' | 'none': a name table is shown on the cards",
  lora: "'on' | 'other-family' | 'none': an opened LoRA file",
  paint: "the 'Colour by' key painting the U, or 'none'",
  activations: "'loading' | 'true' | 'error': the activations view",
  capture: "'running' | a job's result | 'error': an activations capture",
  exported: "'running' | a job's result | 'error': an activations export",
  generate: "'running' | 'done' | 'error': a twin generation",
  genStep: 'the denoising step the Generate scrubber shows',
  look: "'done' | 'error': activations of a generation step",
  twin: "'ready' | 'error': the twin's record was read",
  knobs: "'running' | 'done' | 'error': an intervention run",
  knobsModels: "'twin' | 'twin+checkpoint': the models the Knobs panel offers (the server's weights read)",
  sweep: "'running' | 'done' | 'error': an ablation sweep",
  presenting: "'true' | 'false': Present mode",
  focus: "the focused block's path, or ''",
  pipeline: "'shown' | 'hidden' | 'none': the pipeline strip above the U (hidden: no free room in the view; none: the trace has no pipeline)",
  pipelineStage: "the pipeline stage whose sentence is shown, or ''",
  lessonStep: 'the lesson step shown (absent with no lesson)',
  lessonShown: 'the lesson step whose view has been drawn',
  lessonAnswer: 'the step whose answer is revealed',
  lessonEnded: "'finished' | 'closed'",
  lessonError: "'<step>:<field>' of a refused lesson, 'load' when it could not be read, '' otherwise",
});

/** Announce `value` for `topic`; null or undefined removes it (the topic no longer applies). */
export function announce(topic, value) {
  if (!Object.hasOwn(TOPICS, topic)) throw new Error(`status.js: unknown topic "${topic}"`);
  if (value == null) delete document.body.dataset[topic];
  else document.body.dataset[topic] = String(value);
  document.dispatchEvent(new CustomEvent('sdunet:status', { detail: { topic, value: value == null ? null : String(value) } }));
}

/** Resolves once `topic` reads `value` (at once if it does already). */
export function when(topic, value) {
  if (!Object.hasOwn(TOPICS, topic)) throw new Error(`status.js: unknown topic "${topic}"`);
  if (document.body.dataset[topic] === value) return Promise.resolve();
  return new Promise((resolve) => {
    const on = (e) => {
      if (e.detail.topic !== topic || e.detail.value !== value) return;
      document.removeEventListener('sdunet:status', on);
      resolve();
    };
    document.addEventListener('sdunet:status', on);
  });
}
