// pipeline-strip.js finds the free band of the U's top row: the widest gap between the row's items, from the
// view's top to whatever lies below, clear of both by a margin; none when there is no height.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { freeBand } from '../../static/js/pipeline-strip.js';

const r = (left, top, right, bottom) => ({ left, top, right, bottom });
const view = r(0, 40, 1280, 696);

test('the widest gap between the top row items, above the floor', () => {
  // x, the timestep and time_embed on the left; the context and out on the right (sd1 at 1280×720).
  const row = [r(47, 66, 103, 96), r(132, 69, 210, 92), r(220, 50, 336, 111), r(1045, 69, 1148, 92), r(1177, 66, 1233, 96)];
  assert.deepEqual(freeBand(row, 128, view), { left: 342, right: 1039, top: 46, bottom: 122 });
});

test('items below the band do not narrow it, and a row scrolled away leaves the whole width', () => {
  assert.deepEqual(freeBand([r(300, 200, 900, 260)], 128, view), { left: 6, right: 1274, top: 46, bottom: 122 });
  assert.deepEqual(freeBand([], 500, view), { left: 6, right: 1274, top: 46, bottom: 494 });
});

test('no band when the U starts at the top of the view', () => {
  assert.equal(freeBand([], 48, view), null);
  assert.equal(freeBand([], -200, view), null);
});

test('items that overlap each other merge into one span', () => {
  const row = [r(0, 50, 500, 100), r(100, 50, 300, 100), r(700, 50, 1280, 100)];
  assert.deepEqual(freeBand(row, 128, view), { left: 506, right: 694, top: 46, bottom: 122 });
});
