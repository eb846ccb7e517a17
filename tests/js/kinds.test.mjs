// The page's table of kinds (static/js/kinds.js) is whole: every category has each field, every fill class has
// a legend name, every resample method its words. tests/test_kinds.py checks its keys against sdunet_core.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CATEGORY_NAMES } from '../../static/js/config.js';
import { KINDS, RESAMPLE } from '../../static/js/kinds.js';

const FIELDS = ['short', 'summary', 'words', 'style', 'explain'];

test('every kind states each field, as text or null', () => {
  for (const [category, kind] of Object.entries(KINDS)) {
    assert.deepEqual(Object.keys(kind).sort(), [...FIELDS].sort(), category);
    for (const f of FIELDS) assert.ok(kind[f] === null || (typeof kind[f] === 'string' && kind[f].length), `${category}.${f}`);
  }
});

test('every category is explained, and every fill class has a name in the legend', () => {
  for (const [category, kind] of Object.entries(KINDS)) {
    assert.ok(kind.explain, category);
    if (kind.style !== null) assert.ok(CATEGORY_NAMES[kind.style], `${category}: style ${kind.style}`);
  }
});

test('every resample method has a short form and words', () => {
  for (const [method, r] of Object.entries(RESAMPLE)) {
    assert.ok(r.short && r.words, method);
  }
});
