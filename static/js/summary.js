// summary.js — the text table of `sdunet-explorer summary`, made in the page from the trace it already has.
// A line-for-line mirror of sdunet_core/summary.py format_summary (same columns, widths, rounding), so the download
// equals the CLI's output for the same trace; tests/test_page_features.py checks the two against each other.

/** Python's f"{x:.2f}": JS toFixed rounds exact ties up, Python to even. Ties in binary are multiples of 1/8. */
function fixed2(x) {
  if (Number.isInteger(x * 8) && !Number.isInteger(x * 4)) {
    const y = x * 100; // exact: x is k/8
    let n = Math.floor(y);
    if (n % 2 !== 0) n += 1; // y is n + 0.5: round to the even neighbour
    return (n / 100).toFixed(2);
  }
  return x.toFixed(2);
}

/** summary.py human(): 1234567 → "1.23M". */
export function human(n, unit = '') {
  for (const [div, suffix] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) {
    if (Math.abs(n) >= div) return `${fixed2(n / div)}${suffix}${unit}`;
  }
  return `${Math.round(n)}${unit}`;
}

/** Python's f"{n:,}" for an integer. */
function grouped(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Python's str() of a list of ints: [1, 320, 64, 64]. */
function pyList(xs) {
  return `[${xs.join(', ')}]`;
}

/** The summary text of a trace (the JSON form), the module tree down to `depth`. */
export function formatSummary(trace, depth = 2) {
  const rows = [['Module (kind)', 'Output shape', 'Params', 'FLOPs', 'Attn FLOPs']];
  for (const node of trace.nodes) {
    let level = node.path ? node.path.split('.').length : 0;
    // Top-level blocks sit at depth 1 although input_blocks.N has one dot: count from the block, not the list.
    if (node.path.startsWith('input_blocks.') || node.path.startsWith('output_blocks.')) level -= 1;
    if (node.path === 'input_blocks' || node.path === 'output_blocks' || level > depth) continue;
    const name = level > 1 ? node.name : node.path || 'UNetModel';
    const out = node.outputs?.length ? pyList(node.outputs[0].shape) : '-';
    rows.push([
      `${'  '.repeat(level)}${name} (${node.kind})`,
      out,
      grouped(node.params),
      human(node.flops),
      human(node.flops_by_op.attention),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = '-'.repeat(widths.reduce((s, w) => s + w, 0) + 2 * (widths.length - 1));
  const text = [line];
  rows.forEach((row, i) => {
    text.push(row.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  '));
    if (i === 0) text.push(line);
  });
  const t = trace.totals;
  const inp = trace.input;
  text.push(
    line,
    `Input: x ${pyList(inp.x.shape)}${inp.context ? `, context ${pyList(inp.context.shape)}` : ''}${
      inp.y ? `, y ${pyList(inp.y.shape)}` : ''}`,
    `Total params: ${grouped(t.params)} (${human(t.param_bytes, 'B')} at ${trace.dtype})`,
    `Total FLOPs: ${human(t.flops)} (attention matmuls ${human(t.attention_flops)}); `
      + `MACs without attention: ${human(t.macs_without_attention)}`,
    `Peak memory estimate: ${human(t.peak_memory_bytes, 'B')} (weights + ${human(t.peak_activation_bytes, 'B')} activations)`,
  );
  if (t.time_ms != null) text.push(`Forward time: ${fixed2(t.time_ms)} ms on ${trace.device} (median)`);
  text.push(line);
  return text.join('\n');
}
