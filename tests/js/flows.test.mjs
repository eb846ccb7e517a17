// flows.js reads a block's flow as the trace states it (Node.flow): boxes, operations, residual spans, side
// inputs, parallel projections, the model's own steps leading into a block. A hand-made trace of one small U
// keeps each rule visible; tests/test_page*.py draw the real presets in Chromium.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { expandablePaths, flowOf } from '../../static/js/flows.js';
import { indexTrace } from '../../static/js/trace-index.js';

const run = (module, ...inputs) => ({ op: 'module', out: module, inputs, module });
const op = (kind, out, inputs, text) => ({ op: kind, out, inputs, text });
const shape = (...s) => [{ shape: s, dtype: 'float32' }];

let order = 0;
function node(path, category, { children = [], flow, inputs, outputs, block } = {}) {
  const top = block ?? path.split('.')[0];
  return {
    path,
    name: path.split('.').pop(),
    kind: 'Module',
    category,
    parent: path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : path ? '' : null,
    children: children.map((c) => (path ? `${path}.${c}` : c)),
    block: path ? top : null,
    order: order++,
    called: true,
    inputs: inputs ?? shape(1, 4, 8, 8),
    outputs: outputs ?? shape(1, 4, 8, 8),
    ...(flow ? { flow } : {}),
  };
}

/** A model of three blocks: a time embedding, a ResBlock, and an up block that concatenates the ResBlock's
 * output with a skip, then runs a cross-attention. */
function tinyTrace() {
  order = 0;
  const nodes = [
    node('', 'model', {
      children: ['time_embed', 'res', 'up'],
      flow: [
        op('sinusoid', 't_emb', ['timesteps'], 'sinusoidal timestep embedding'),
        run('time_embed', 't_emb'),
        run('res', 'x', 'time_embed'),
        op('concat', 'up:in', ['res', 'x'], 'concatenate the skip from x'),
        run('up', 'up:in', 'context'),
      ],
    }),
    node('time_embed', 'time_embedding', { children: ['0', '1'], inputs: shape(1, 4), outputs: shape(1, 16) }),
    node('time_embed.0', 'linear', { inputs: shape(1, 4), outputs: shape(1, 16) }),
    node('time_embed.1', 'activation', { inputs: shape(1, 16), outputs: shape(1, 16) }),
    node('res', 'resblock', {
      children: ['in_layers', 'emb_layers', 'out_layers', 'skip_connection'],
      flow: [
        run('in_layers', 'x'),
        run('emb_layers', 'emb'),
        op('add_embedding', 'h', ['in_layers', 'emb_layers'], 'add the time embedding'),
        run('out_layers', 'h'),
        run('skip_connection', 'x'),
        op('residual_add', 'out', ['skip_connection', 'out_layers'], 'residual add'),
      ],
    }),
    node('res.in_layers', 'sequence'),
    node('res.emb_layers', 'sequence', { inputs: shape(1, 16), outputs: shape(1, 4) }),
    node('res.out_layers', 'sequence'),
    node('res.skip_connection', 'identity'),
    node('up', 'cross_attention', {
      children: ['to_q', 'to_k', 'to_v', 'to_out'],
      inputs: shape(1, 8, 8, 8),
      flow: [
        run('to_q', 'x'),
        run('to_k', 'context'),
        run('to_v', 'context'),
        op('attention', 'attended', ['to_q', 'to_k', 'to_v'], 'softmax(QKᵀ/√d)·V'),
        run('to_out', 'attended'),
      ],
    }),
    ...['to_q', 'to_k', 'to_v', 'to_out'].map((c) => node(`up.${c}`, 'linear')),
  ];
  nodes.find((n) => n.path === 'up').attention = { heads: 2, head_channels: 4 };
  const blocks = ['time_embed', 'res', 'up'].map((path) => ({ path, category: 'x', stage: 'down', level: 0 }));
  const skips = [{ from: 'x', to: 'up', shape: [1, 4, 8, 8], concat_shape: [1, 8, 8, 8] }];
  const input = { timesteps: { shape: [1], dtype: 'float32' }, x: { shape: [1, 4, 8, 8], dtype: 'float32' } };
  return indexTrace({ nodes, blocks, skips, input, totals: { flops: 0, params: 0 } });
}

test('a ResBlock: the embedding as a side input of its add, the skip connection on the residual lane', () => {
  const flow = flowOf(tinyTrace(), 'res');
  assert.deepEqual(flow.items.map((it) => it.id), ['res.in_layers', 'res:add_emb', 'res.out_layers', 'res:residual']);
  assert.equal(flow.items[1].label, 'add the time embedding'); // the trace's words
  assert.deepEqual(flow.items[1].side, { t: 'box', path: 'res.emb_layers', feed: 'emb', feedText: 'time embedding' });
  assert.equal(flow.residuals.length, 1);
  assert.equal(flow.residuals[0].from, flow.items[0]); // the span starts at the first step reading x
  assert.equal(flow.residuals[0].to, flow.items[3]);
  assert.deepEqual(flow.residuals[0].via, ['res.skip_connection']);
  assert.deepEqual(flow.boxPaths.sort(), ['res.emb_layers', 'res.in_layers', 'res.out_layers', 'res.skip_connection']);
});

test('attention: q, k and v side by side, keys and values fed by the context; the skip concatenated first', () => {
  const flow = flowOf(tinyTrace(), 'up');
  assert.deepEqual(flow.items.map((it) => it.t), ['op', 'par', 'pill', 'box']);
  const [concat, par, pill] = flow.items;
  assert.equal(concat.op, 'concat');
  assert.deepEqual(concat.out, [1, 8, 8, 8]);
  assert.equal(concat.side.text, 'skip 4×8×8');
  // The tensor before the concat is the previous block's output, as traced (not the concat minus the skip).
  assert.deepEqual(flow.inShape, [1, 4, 8, 8]);
  assert.deepEqual(par.members.map((m) => m.feed), ['x', 'ctx', 'ctx']);
  assert.equal(pill.text, 'softmax(QKᵀ/√d)·V · 2 heads × 4');
  assert.equal(pill.id, 'up:attend');
});

test('a module without a flow of its own: its children in the order they ran, after the step that made its input', () => {
  const flow = flowOf(tinyTrace(), 'time_embed');
  assert.deepEqual(flow.items.map((it) => it.id), ['time_embed:reshape', 'time_embed.0', 'time_embed.1']);
  assert.equal(flow.items[0].text, 'sinusoidal timestep embedding');
  assert.deepEqual(flow.inShape, [1]); // the timesteps
});

test('every block with something inside can be opened', () => {
  assert.deepEqual(expandablePaths(tinyTrace()), ['time_embed', 'res', 'up']);
});
