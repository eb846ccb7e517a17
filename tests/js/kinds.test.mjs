// The page's table of kinds (static/js/kinds.js) is whole: every category has each field, every fill class has
// a legend name, every resample method its words. tests/test_kinds.py checks its keys against sdunet_core.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CATEGORY_NAMES } from '../../static/js/config.js';
import { KINDS, RESAMPLE } from '../../static/js/kinds.js';

const FIELDS = ['short', 'summary', 'words', 'style', 'explain'];
const OPTIONAL = ['told', 'role'];
const ROLES = new Set(['timestep', 'label', 'stacked_attention', 'attention']);
const text = (v) => typeof v === 'string' && v.length > 0;

test('every kind states each field, as text or null; told is a function, role a known one', () => {
  for (const [category, kind] of Object.entries(KINDS)) {
    const extra = Object.keys(kind).filter((k) => !FIELDS.includes(k));
    assert.deepEqual(FIELDS.filter((f) => !(f in kind)), [], `${category} lacks a field`);
    assert.deepEqual(extra.filter((k) => !OPTIONAL.includes(k)), [], `${category} has an unknown field`);
    for (const f of FIELDS) {
      const v = kind[f];
      assert.ok(v === null || text(v) || (f === 'short' && typeof v === 'function'), `${category}.${f}`);
    }
    assert.ok(kind.told == null || typeof kind.told === 'function', `${category}.told`);
    assert.ok(kind.role == null || ROLES.has(kind.role), `${category}.role`);
  }
});

test("a kind's told text reads the node's facts and falls back to its explanation", () => {
  const up = { category: 'up_block', attention: [{}], takes_context: true, resample: { method: 'nearest_conv', direction: 'up', factor: 2 } };
  assert.match(KINDS.up_block.told(up), /attends to itself and to the prompt, then doubles the resolution.*nearest neighbour/);
  assert.equal(KINDS.middle_block.told({ attention: [{}] }), null);
  assert.match(KINDS.middle_block.told({ attention: [] }), /single ResBlock/);
  assert.equal(KINDS.resblock.short({ resample: { direction: 'down', factor: 2 } }), 'Res ↓2');
  assert.equal(KINDS.resblock.short({}), 'Res');
  assert.match(KINDS.norm.told({ norm: { type: 'group', channels: 320, groups: 32, affine: true } }), /320 channels into 32 groups/);
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
