// #/experiments/{id} — one experiment: actions, learning curves, the ASHA
// picture, hyperparameters against the metric, the trials, the config.

import { get, post } from './api.js';
import { ashaPicture } from './asha.js';
import { colorFor, lineChart, scatterChart } from './chart.js';
import {
  h, fill, stateBadge, stateName, isTerminal, fmtNum, fmtAge, fmtDuration, usToDate, progressBar,
  flattenHparams, fmtValue, sortableTable, whenChanged, confirmDialog, setOptions,
} from './util.js';

const ACTIONS = [
  { name: 'pause', label: 'Pause', when: (s) => s === 'STATE_ACTIVE', text: 'Running trials checkpoint and stop; Activate resumes them from their checkpoints.' },
  { name: 'activate', label: 'Activate', when: (s) => s === 'STATE_PAUSED', text: 'Its trials are scheduled again and resume from their checkpoints.' },
  { name: 'cancel', label: 'Cancel', when: (s) => !isTerminal(s) && s !== 'STATE_STOPPING_CANCELED' && s !== 'STATE_STOPPING_KILLED', text: 'Running trials checkpoint and stop, and no new trials start. This cannot be undone.' },
  { name: 'kill', label: 'Kill', danger: true, when: (s) => !isTerminal(s) && s !== 'STATE_STOPPING_KILLED', text: 'Running trials are killed at once, without a checkpoint. This cannot be undone.' },
];

function stat(label, ...value) {
  return h('div', { class: 'stat' }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value));
}

export function experimentView(id) {
  const memo = {};
  const sort = { key: 'id', dir: 'asc' };
  const el = {};
  let x, trials = [], reports = [], preview = null, previewTried = false;
  let message = null;

  async function act(a) {
    const ok = await confirmDialog(`${a.label} experiment ${id}?`, a.text, a.label);
    if (!ok) return;
    try {
      x = await post(`/api/v1/experiments/${id}/${a.name}`);
      message = null;
    } catch (e) {
      message = e.message;
    }
    renderHead();
  }

  function renderHead() {
    fill(el.head,
      h('div', { class: 'title' },
        h('h1', {}, `Experiment ${x.id}`, x.name ? h('span', { class: 'subtitle' }, x.name) : null),
        stateBadge(x.state)),
      h('div', { class: 'actions' }, ACTIONS.map((a) => h('button', {
        class: `btn${a.danger ? ' danger' : ''}`, type: 'button', dataset: { action: a.name },
        disabled: !a.when(x.state), onclick: () => act(a),
      }, a.label))),
      message ? h('p', { class: 'error', role: 'alert' }, message) : null,
      x.message ? h('p', { class: 'note' }, x.message) : null);
  }

  function renderStats() {
    const best = x.best_validation_metrics?.[x.metric];
    const start = usToDate(x.start_time_us);
    const end = usToDate(x.end_time_us);
    fill(el.stats,
      stat('Progress', progressBar(x.progress)),
      stat('Trials', `${x.trials_running} running · ${x.trials_completed} done`,
        h('div', { class: 'muted small' }, `${x.num_trials} total, ${x.trials_queued} queued, ${x.trials_errored} errored`)),
      stat(`Best ${x.metric}`, best === undefined ? '—' : fmtNum(best),
        Number(x.best_trial_id) ? h('div', { class: 'small' }, h('a', { href: `#/trials/${x.best_trial_id}` }, `trial ${x.best_trial_id}`)) : null),
      stat('Searcher', x.searcher, h('div', { class: 'muted small' }, `${x.smaller_is_better ? 'minimizes' : 'maximizes'} ${x.metric}`)),
      stat('Started', start ? fmtAge(x.start_time_us) : '—',
        h('div', { class: 'muted small' }, start ? `ran ${fmtDuration((end || new Date()) - start)}` : '')));
  }

  // Learning curves: the chosen validation metric against batches, a line per trial.
  function renderCurves() {
    const names = [...new Set(reports.flatMap((r) => Object.keys(r.metrics)))].sort();
    setOptions(el.curveMetric, names.length ? names : [x.metric], x.metric);
    const metric = el.curveMetric.value;
    const ids = trials.map((t) => t.id);
    const series = trials.map((t, i) => ({
      name: String(t.id), label: `Trial ${t.id}`, color: colorFor(i),
      points: reports.filter((r) => r.trial_id === t.id && r.metrics[metric] !== undefined)
        .map((r) => [Number(r.steps_completed), r.metrics[metric]]),
    }));
    whenChanged(memo, 'curves', [el.curves.clientWidth, metric, ids, series], () => lineChart(el.curves, {
      series, xLabel: 'batches', yLabel: metric, empty: 'No validation yet: each trial adds its line at its first validation.',
    }));
  }

  function hparamNames() {
    const all = trials.map((t) => flattenHparams(t.hparams));
    const names = [...new Set(all.flatMap((o) => Object.keys(o)))].sort();
    // Hyperparameters that vary come first: they are what the search explored.
    const varies = (n) => new Set(all.map((o) => JSON.stringify(o[n]))).size > 1;
    return [...names.filter(varies), ...names.filter((n) => !varies(n))];
  }

  function renderScatter() {
    const names = hparamNames();
    setOptions(el.scatterParam, names, names[0]);
    const name = el.scatterParam.value;
    const points = trials.map((t, i) => ({ t, i, v: flattenHparams(t.hparams)[name] }))
      .filter(({ t, v }) => t.has_best_metric && v !== undefined && v !== null)
      .map(({ t, i, v }) => ({
        x: typeof v === 'number' ? v : String(v), y: Number(t.best_metric),
        label: `Trial ${t.id}`, color: colorFor(i), href: `#/trials/${t.id}`,
      }));
    whenChanged(memo, 'scatter', [el.scatter.clientWidth, name, points], () => scatterChart(el.scatter, {
      points, xLabel: name, yLabel: `best ${x.metric}`, empty: 'No trial has validated yet.',
    }));
  }

  function renderTrials() {
    const names = hparamNames();
    const asha = x.searcher === 'adaptive_asha';
    const accuracy = x.metric !== 'validation_accuracy' &&
      trials.some((t) => t.best_validation_metrics?.validation_accuracy !== undefined);
    const num = (v) => (v === undefined || v === null ? null : Number(v));
    const columns = [
      { key: 'id', label: 'Trial', num: true, value: (t) => Number(t.id), render: (t) => h('a', { href: `#/trials/${t.id}` }, t.id) },
      { key: 'state', label: 'State', value: (t) => t.state, render: (t) => stateBadge(t.state) },
      asha ? { key: 'rung', label: 'Rung', num: true, value: (t) => t.rung + 1 } : null,
      { key: 'steps', label: 'Batches', num: true, value: (t) => Number(t.steps_completed), render: (t) => `${t.steps_completed}${Number(t.target_batches) ? ` / ${t.target_batches}` : ''}` },
      { key: 'restarts', label: 'Restarts', num: true, value: (t) => t.restarts },
      ...names.map((n) => ({ key: `hp:${n}`, label: n, num: true, value: (t) => flattenHparams(t.hparams)[n], render: (t) => fmtValue(flattenHparams(t.hparams)[n]) })),
      { key: 'best', label: `Best ${x.metric}`, num: true, value: (t) => (t.has_best_metric ? Number(t.best_metric) : null) },
      accuracy ? { key: 'acc', label: 'Best validation_accuracy', num: true, value: (t) => num(t.best_validation_metrics?.validation_accuracy) } : null,
      { key: 'worker', label: 'Worker', value: (t) => t.agent_id || '' },
    ].filter(Boolean);
    const render = () => fill(el.trials, trials.length === 0
      ? h('p', { class: 'empty muted' }, 'No trials yet.')
      : sortableTable(columns, trials, sort, {
        onSort: render,
        rowAttrs: (t) => ({ class: 'clickable', dataset: { trial: t.id }, onclick: (e) => { if (!e.target.closest('a')) location.hash = `#/trials/${t.id}`; } }),
      }));
    whenChanged(memo, 'trials', [trials, x.metric], render);
  }

  function renderAsha() {
    if (x.searcher !== 'adaptive_asha') {
      el.ashaCard.hidden = true;
      return;
    }
    el.ashaCard.hidden = false;
    whenChanged(memo, 'asha', [trials, preview], () => ashaPicture(el.asha, {
      trials, preview, metric: x.metric, smallerIsBetter: x.smaller_is_better,
    }));
  }

  return {
    title: `Experiment ${id}`,
    nav: 'experiments',
    mount(root) {
      el.head = h('div', { class: 'page-head' });
      el.stats = h('div', { class: 'stats' });
      el.curveMetric = h('select', { 'aria-label': 'Metric', onchange: renderCurves });
      el.curves = h('div', { class: 'chart-box', id: 'learning-curves' });
      el.scatterParam = h('select', { 'aria-label': 'Hyperparameter', onchange: renderScatter });
      el.scatter = h('div', { class: 'chart-box', id: 'hp-scatter' });
      el.asha = h('div', { id: 'asha' });
      el.ashaCard = h('section', { class: 'card', hidden: true }, h('h2', {}, 'ASHA rungs'), el.asha);
      el.trials = h('div', { id: 'trials' });
      el.config = h('pre', { class: 'config' });
      fill(root,
        h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Experiments'), ' / ', `Experiment ${id}`),
        el.head, el.stats,
        h('div', { class: 'grid-2' },
          h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Learning curves'), el.curveMetric), el.curves),
          h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Hyperparameter vs. metric'), el.scatterParam), el.scatter)),
        el.ashaCard,
        h('section', { class: 'card flush' }, h('h2', {}, 'Trials'), el.trials),
        h('section', { class: 'card' }, h('details', {}, h('summary', {}, 'Configuration'), el.config)));
    },
    async update() {
      [x, { trials }, { reports }] = await Promise.all([
        get(`/api/v1/experiments/${id}`),
        get(`/api/v1/experiments/${id}/trials`),
        get(`/api/v1/experiments/${id}/metrics?group=validation`),
      ]);
      trials.sort((a, b) => Number(a.id) - Number(b.id));
      if (x.searcher === 'adaptive_asha' && !previewTried) {
        previewTried = true;
        preview = await get(`/api/v1/experiments/${id}/preview`).catch(() => null);
      }
      document.title = `Experiment ${id} · ${stateName(x.state)} · det`;
      whenChanged(memo, 'head', [x.state, x.name, x.message, message], renderHead);
      whenChanged(memo, 'stats', [x, Math.floor(Date.now() / 10000)], renderStats);
      renderCurves();
      renderScatter();
      renderAsha();
      renderTrials();
      if (el.config.textContent !== x.config_yaml) el.config.textContent = x.config_yaml;
    },
  };
}
