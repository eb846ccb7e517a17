// status.js is the page's one readiness signal: no other page module writes or reads body's dataset, and every
// topic a module announces is in its table (an unknown one throws at run time; this finds it before).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { TOPICS } from '../../static/js/status.js';

const DIR = new URL('../../static/js/', import.meta.url).pathname;
const modules = readdirSync(DIR)
  .filter((f) => f.endsWith('.js') && f !== 'status.js')
  .map((f) => ({ name: f, text: readFileSync(join(DIR, f), 'utf8') }));

test('only status.js touches document.body.dataset', () => {
  const touching = modules.filter((m) => /document\.body\.dataset|body\.dataset\s*[;.[]/.test(m.text)).map((m) => m.name);
  assert.deepEqual(touching, []);
});

test('every announced or awaited topic is in the table, and every topic in the table is used', () => {
  const used = new Set();
  for (const m of modules) {
    for (const [, topic] of m.text.matchAll(/\b(?:announce|when)\(\s*'(\w+)'/g)) {
      assert.ok(Object.hasOwn(TOPICS, topic), `${m.name} announces "${topic}", which status.js does not list`);
      used.add(topic);
    }
  }
  // Topics announced through a variable (activation_capture.js's runJob(flag, …)) are passed as literals there.
  for (const m of modules) for (const [, topic] of m.text.matchAll(/runJob\(\s*'(\w+)'/g)) used.add(topic);
  assert.deepEqual([...Object.keys(TOPICS)].filter((t) => !used.has(t)), []);
});
