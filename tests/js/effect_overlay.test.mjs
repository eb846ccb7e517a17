// "Colour by: effect of removing" (static/js/effect_overlay.js): the painter fills each top-level block the sweep
// removed by its SSIM drop (the largest darkest), draws the blocks it did not remove as "not measured" (never as
// 0), and leaves what is inside a block alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { rampColor } from '../../static/js/config.js';
import { effectPainter } from '../../static/js/effect_overlay.js';

const TOP = new Set(['time_embed', 'input_blocks.0', 'middle_block', 'output_blocks.0', 'out']);
const RESULT = {
  what: 'blocks', pictures: 8, steps: 20, ranking: ['middle_block', 'input_blocks.0', 'output_blocks.0'],
  effects: [
    { target: 'input_blocks.0', ssim_drop: 0.2, mse: 0.01, verdict_change: 0.5 },
    { target: 'middle_block', ssim_drop: 0.4, mse: 0.02, verdict_change: 1 },
    { target: 'output_blocks.0', ssim_drop: 0, mse: 0, verdict_change: 0 },
  ],
};

test('measured blocks show their drop, the largest the darkest; a zero effect is still painted as measured', () => {
  const paint = effectPainter(RESULT, (p) => TOP.has(p));
  const mid = paint({ path: 'middle_block' });
  assert.equal(mid.badge, '0.40');
  assert.equal(mid.fill, rampColor(1));
  assert.equal(paint({ path: 'input_blocks.0' }).badge, '0.20');
  const none = paint({ path: 'output_blocks.0' });
  assert.equal(none.badge, '0.00');
  assert.notEqual(none.fill, paint({ path: 'out' }).fill); // no effect measured is not "not measured"
});

test('blocks the sweep did not remove are "not measured", and nothing inside a block is painted', () => {
  const paint = effectPainter(RESULT, (p) => TOP.has(p));
  assert.equal(paint({ path: 'time_embed' }).badge, '—');
  assert.deepEqual(paint({ path: 'out' }), paint({ path: 'time_embed' }));
  assert.equal(paint({ path: 'middle_block.0' }), null);
});
