// The ASHA picture: one column per rung, each holding the trials that
// reached it, so the funnel of successive halving shows at a glance which
// trials were promoted, which still run, and where each was stopped.

import { h, fill, fmtNum } from './util.js';

// What happened to `t` at rung `k` (k <= t.rung).
function outcome(t, k) {
  const rung = Math.max(0, t.rung);
  if (k < rung) return 'promoted';
  switch (t.state) {
    case 'STATE_ACTIVE': return 'running';
    case 'STATE_QUEUED': return 'queued';
    case 'STATE_PAUSED': return 'paused';
    case 'STATE_ERROR': return 'errored';
    case 'STATE_CANCELED': return 'canceled';
    case 'STATE_COMPLETED':
      // Trained to its full length (the top rung) vs. closed by the searcher.
      return t.exit_reason === 'EXIT_REASON_COMPLETED' ? 'finished' : 'stopped';
    default: return 'running';
  }
}

const OUTCOMES = [
  ['promoted', 'promoted to a higher rung'],
  ['running', 'training toward this rung'],
  ['queued', 'waiting for a slot'],
  ['finished', 'trained to full length'],
  ['stopped', 'stopped by ASHA here'],
  ['errored', 'failed'],
  ['canceled', 'canceled'],
  ['paused', 'paused'],
];

// Lengths (in the config's unit) of rung k over all brackets, e.g. "58 / 234".
function rungLengths(preview, k) {
  const lengths = new Set();
  for (const b of preview?.brackets || []) {
    const r = (b.rungs || [])[k];
    if (r) lengths.add(Number(r.length));
  }
  return [...lengths].sort((a, b) => a - b);
}

export function ashaPicture(container, { trials, preview, metric, smallerIsBetter }) {
  const maxRung = Math.max(0, ...trials.map((t) => t.rung));
  const planned = Math.max(0, ...(preview?.brackets || []).map((b) => b.num_rungs));
  const numRungs = Math.max(planned, maxRung + 1);
  const score = (t) => (t.has_best_metric ? Number(t.best_metric) : null);
  const better = (a, b) => {
    const x = score(a), y = score(b);
    if (x === null) return y === null ? Number(a.id) - Number(b.id) : 1;
    if (y === null) return -1;
    return smallerIsBetter ? x - y : y - x;
  };
  const columns = [];
  for (let k = 0; k < numRungs; k++) {
    const here = trials.filter((t) => Math.max(0, t.rung) >= k).sort(better);
    const lengths = rungLengths(preview, k);
    const sub = lengths.length ? `${lengths.join(' / ')} ${preview.unit || ''}`.trim() : '';
    columns.push(h('div', { class: 'rung', dataset: { rung: k } },
      h('div', { class: 'rung-head' },
        h('strong', {}, `Rung ${k + 1}`),
        sub ? h('span', { class: 'muted' }, sub) : null,
        h('span', { class: 'rung-count' }, `${here.length} trial${here.length === 1 ? '' : 's'}`)),
      h('div', { class: 'chips' }, here.map((t) => {
        const o = outcome(t, k);
        const m = score(t);
        return h('a', {
          class: `chip ${o}`, href: `#/trials/${t.id}`, dataset: { trial: t.id, outcome: o },
          title: `Trial ${t.id} · ${o} · ${t.steps_completed} batches` +
            (m === null ? '' : ` · best ${metric} ${fmtNum(m)}`),
        }, `#${t.id}`);
      }))));
  }
  const legend = h('div', { class: 'legend asha-legend' }, OUTCOMES
    .filter(([o]) => trials.some((t) => Array.from({ length: Math.max(0, t.rung) + 1 }, (_, k) => outcome(t, k)).includes(o)))
    .map(([o, text]) => h('span', { class: 'legend-item' }, h('span', { class: `chip ${o} sample` }), text)));
  const brackets = (preview?.brackets || []).map((b, i) => h('li', {},
    `Bracket ${i + 1}: ${b.num_rungs} rung${b.num_rungs === 1 ? '' : 's'} (`,
    (b.rungs || []).map((r) => Number(r.length)).join(', '), ` ${preview.unit}), `,
    `${b.trials} trials, ${b.max_concurrent_trials} at once`));
  return fill(container,
    h('div', { class: 'asha' }, columns),
    legend,
    brackets.length ? h('ul', { class: 'brackets muted' }, brackets) : null);
}
