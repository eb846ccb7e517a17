// format.js — numbers, shapes and bytes as people read them. Pure functions, no DOM.

/** A tensor shape without its batch dimension, as on the arrows: [1, 320, 64, 64] → "320×64×64". */
export function shapeText(shape) {
  if (!shape || !shape.length) return '';
  return (shape.length > 1 ? shape.slice(1) : shape).join('×');
}

/** The full shape, as in the details panel and the trace JSON: "[1, 320, 64, 64]". */
export function shapeFull(shape) {
  return shape ? `[${shape.join(', ')}]` : '—';
}

/** Exact integer with thousands separators: 2255040 → "2,255,040". */
export function exact(n) {
  return n == null ? '—' : Math.round(n).toLocaleString('en-US');
}

/** Compact count: 859520964 → "859.5 M", 803273441280 → "803.3 G". */
export function compact(n, unit = '') {
  if (n == null) return '—';
  const a = Math.abs(n);
  const steps = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [v, s] of steps) {
    if (a >= v) return `${(n / v).toFixed(a / v >= 100 ? 0 : 1)} ${s}${unit}`;
  }
  return `${n}${unit ? ` ${unit}` : ''}`;
}

/** Bytes in binary units: 1740733696 → "1.62 GiB". */
export function bytes(n) {
  if (n == null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i === 0 ? 0 : v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}

/** A share as a percentage with sensible precision: 0.0671 → "6.7%", 0.00004 → "<0.01%". */
export function percent(x) {
  if (x == null || !Number.isFinite(x)) return '—';
  if (x === 0) return '0%';
  const p = x * 100;
  if (p < 0.01) return '<0.01%';
  if (p < 1) return `${p.toFixed(2)}%`;
  return `${p.toFixed(1)}%`;
}

/** Milliseconds: 0.0123 → "0.012 ms", 12.34 → "12.3 ms". */
export function ms(x) {
  if (x == null) return '—';
  if (x >= 100) return `${x.toFixed(0)} ms`;
  if (x >= 10) return `${x.toFixed(1)} ms`;
  if (x >= 1) return `${x.toFixed(2)} ms`;
  return `${x.toPrecision(2)} ms`;
}
