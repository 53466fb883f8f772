// Line and scatter charts drawn as SVG. The charts here hold tens of series
// and hundreds of points, which SVG draws without effort; being DOM, every
// line and point can carry its own tooltip and be found by a test.

import { h, fill, fmtNum } from './util.js';

// Tableau 10: distinct, readable on white, friendly to common colour blindness.
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f',
  '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
export const colorFor = (i) => PALETTE[i % PALETTE.length];

const MARGIN = { left: 58, right: 16, top: 14, bottom: 42 };

// About `count` round tick values (1, 2 or 5 times a power of ten) over [lo, hi].
function niceTicks(lo, hi, count) {
  const span = hi - lo;
  const raw = span / Math.max(count, 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= count) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function logTicks(lo, hi) {
  const out = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    const v = 10 ** e;
    if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
  }
  return out.length >= 2 ? out : [lo, hi];
}

// [lo, hi] of the values, widened when empty or flat.
function extent(values, pad = 0) {
  let lo = Math.min(...values), hi = Math.max(...values);
  if (!Number.isFinite(lo)) return [0, 1];
  if (lo === hi) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
  const p = (hi - lo) * pad;
  return [lo - p, hi + p];
}

function linearScale([d0, d1], [r0, r1]) {
  return (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);
}

function logScale([d0, d1], [r0, r1]) {
  const l0 = Math.log10(d0), l1 = Math.log10(d1);
  return (v) => r0 + ((Math.log10(v) - l0) / (l1 - l0)) * (r1 - r0);
}

// The SVG with grid, ticks and axis labels; returns it with the plot box.
function frame(width, height, { xTicks, yTicks, x, y, xLabel, yLabel, xFormat = fmtNum }) {
  const svg = h('svg:svg', { class: 'chart', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  const box = { x0: MARGIN.left, x1: width - MARGIN.right, y0: height - MARGIN.bottom, y1: MARGIN.top };
  const grid = h('svg:g', { class: 'grid' });
  for (const t of yTicks) {
    const py = y(t);
    grid.append(h('svg:line', { x1: box.x0, x2: box.x1, y1: py, y2: py }));
    grid.append(h('svg:text', { x: box.x0 - 8, y: py, class: 'tick y' }, fmtNum(t)));
  }
  for (const t of xTicks) {
    const px = x(t);
    grid.append(h('svg:line', { x1: px, x2: px, y1: box.y0, y2: box.y0 + 5, class: 'tick-mark' }));
    grid.append(h('svg:text', { x: px, y: box.y0 + 18, class: 'tick x' }, xFormat(t)));
  }
  grid.append(h('svg:line', { x1: box.x0, x2: box.x1, y1: box.y0, y2: box.y0, class: 'axis' }));
  svg.append(grid);
  svg.append(h('svg:text', { x: (box.x0 + box.x1) / 2, y: height - 6, class: 'axis-label' }, xLabel));
  svg.append(h('svg:text', {
    x: 12, y: (box.y0 + box.y1) / 2, class: 'axis-label',
    transform: `rotate(-90 12 ${(box.y0 + box.y1) / 2})`,
  }, yLabel));
  return { svg, box };
}

function widthOf(container) {
  return Math.max(280, Math.floor(container.clientWidth || 600));
}

// Lines with their points, one per series: {name, label, color, points: [[x, y]...]}.
// Fills `container` with the chart and a legend; hovering a legend entry
// brings its line forward.
export function lineChart(container, { series, xLabel, yLabel, height = 300, empty = 'No data yet.' }) {
  const withData = series.filter((s) => s.points.length > 0);
  if (withData.length === 0) return fill(container, h('p', { class: 'chart-empty muted' }, empty));
  const width = widthOf(container);
  const xs = withData.flatMap((s) => s.points.map((p) => p[0]));
  const ys = withData.flatMap((s) => s.points.map((p) => p[1]));
  const xd = extent([0, ...xs]);
  const yd = extent(ys, 0.06);
  const x = linearScale(xd, [MARGIN.left, width - MARGIN.right]);
  const y = linearScale(yd, [height - MARGIN.bottom, MARGIN.top]);
  const { svg } = frame(width, height, {
    xTicks: niceTicks(xd[0], xd[1], Math.max(2, Math.floor(width / 90))),
    yTicks: niceTicks(yd[0], yd[1], 5), x, y, xLabel, yLabel,
  });
  const lines = h('svg:g', { class: 'lines' });
  for (const s of withData) {
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    const d = pts.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('');
    const g = h('svg:g', { class: 'series', dataset: { name: s.name }, style: `color:${s.color}` },
      h('svg:path', { d, class: 'line' }),
      pts.map((p) => h('svg:circle', { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 3, class: 'point' },
        h('svg:title', {}, `${s.label} · ${xLabel} ${fmtNum(p[0])} · ${yLabel} ${fmtNum(p[1])}`))));
    lines.append(g);
  }
  svg.append(lines);
  const legend = h('div', { class: 'legend' }, withData.map((s) => h('span', {
    class: 'legend-item', dataset: { name: s.name },
    onmouseenter: () => highlight(lines, s.name), onmouseleave: () => highlight(lines, null),
  }, h('span', { class: 'swatch', style: `background:${s.color}` }), s.label)));
  return fill(container, svg, legend);
}

function highlight(lines, name) {
  for (const g of lines.querySelectorAll('.series')) {
    g.classList.toggle('dim', name !== null && g.dataset.name !== name);
    if (g.dataset.name === name) lines.append(g);  // draw it on top
  }
}

// Points {x, y, label, color, href}. Numeric x spanning two or more decades
// is drawn on a log axis (learning rates); strings are categories.
export function scatterChart(container, { points, xLabel, yLabel, height = 300, empty = 'No data yet.' }) {
  if (points.length === 0) return fill(container, h('p', { class: 'chart-empty muted' }, empty));
  const width = widthOf(container);
  const categorical = points.some((p) => typeof p.x !== 'number');
  const yd = extent(points.map((p) => p.y), 0.08);
  const y = linearScale(yd, [height - MARGIN.bottom, MARGIN.top]);
  let x, xTicks, xFormat = fmtNum, logX = false;
  if (categorical) {
    const cats = [...new Set(points.map((p) => String(p.x)))].sort();
    const band = (width - MARGIN.left - MARGIN.right) / cats.length;
    x = (v) => MARGIN.left + band * (cats.indexOf(String(v)) + 0.5);
    xTicks = cats;
    xFormat = (v) => v;
  } else {
    const xs = points.map((p) => p.x);
    logX = Math.min(...xs) > 0 && Math.max(...xs) / Math.min(...xs) >= 100;
    const xd = logX ? [Math.min(...xs) / 1.3, Math.max(...xs) * 1.3] : extent(xs, 0.06);
    x = (logX ? logScale : linearScale)(xd, [MARGIN.left, width - MARGIN.right]);
    xTicks = logX ? logTicks(...xd) : niceTicks(xd[0], xd[1], Math.max(2, Math.floor(width / 90)));
  }
  const { svg } = frame(width, height, {
    xTicks, yTicks: niceTicks(yd[0], yd[1], 5), x, y,
    xLabel: logX ? `${xLabel} (log scale)` : xLabel, yLabel, xFormat,
  });
  // Equal categorical values would hide each other: spread them a little.
  const seen = new Map();
  const dots = h('svg:g', { class: 'dots' }, points.map((p) => {
    const key = `${p.x}|${p.y}`;
    const n = seen.get(key) || 0;
    seen.set(key, n + 1);
    const dot = h('svg:circle', {
      cx: (x(p.x) + n * 5).toFixed(1), cy: y(p.y).toFixed(1), r: 5, class: 'dot',
      style: `fill:${p.color}`,
    }, h('svg:title', {}, `${p.label} · ${xLabel} ${typeof p.x === 'number' ? fmtNum(p.x) : p.x} · ${yLabel} ${fmtNum(p.y)}`));
    return p.href ? h('svg:a', { href: p.href }, dot) : dot;
  }));
  svg.append(dots);
  return fill(container, svg);
}
