// #/ — every experiment: state, progress, trials, best metric, age.

import { get } from './api.js';
import { h, fill, stateBadge, fmtNum, fmtAge, progressBar, sortableTable, whenChanged } from './util.js';

function bestMetric(x) {
  const v = x.best_validation_metrics?.[x.metric];
  return v === undefined ? null : v;
}

const COLUMNS = [
  { key: 'id', label: 'ID', num: true, value: (x) => Number(x.id), render: (x) => h('a', { href: `#/experiments/${x.id}` }, x.id) },
  { key: 'name', label: 'Name', lead: true, value: (x) => x.name, render: (x) => h('a', { href: `#/experiments/${x.id}` }, x.name || '(unnamed)') },
  { key: 'state', label: 'State', value: (x) => x.state, render: (x) => stateBadge(x.state) },
  { key: 'searcher', label: 'Searcher', value: (x) => x.searcher },
  { key: 'progress', label: 'Progress', num: true, value: (x) => x.progress, render: (x) => progressBar(x.progress) },
  { key: 'running', label: 'Running', num: true, value: (x) => x.trials_running },
  { key: 'completed', label: 'Completed', num: true, value: (x) => x.trials_completed },
  { key: 'trials', label: 'Trials', num: true, value: (x) => x.num_trials },
  {
    key: 'best', label: 'Best metric', num: true, value: bestMetric,
    render: (x) => (bestMetric(x) === null ? '—'
      : h('span', { title: `${x.metric} of trial ${x.best_trial_id}` }, h('span', { class: 'metric-name' }, x.metric), ' ', fmtNum(bestMetric(x)))),
  },
  { key: 'age', label: 'Started', num: true, value: (x) => -Number(x.start_time_us), render: (x) => fmtAge(x.start_time_us) },
];

export function experimentsView() {
  const sort = { key: 'id', dir: 'desc' };
  const memo = {};
  let list, table;
  const render = () => fill(table, list.length === 0
    ? h('div', { class: 'empty' }, h('p', {}, 'No experiments yet.'),
      h('p', { class: 'muted' }, 'Create one with ', h('code', {}, 'det experiment create config.yaml .')))
    : sortableTable(COLUMNS, list, sort, {
      onSort: render,
      stack: true,
      rowAttrs: (x) => ({ class: 'clickable', dataset: { id: x.id }, onclick: (e) => { if (!e.target.closest('a')) location.hash = `#/experiments/${x.id}`; } }),
    }));
  return {
    title: 'Experiments',
    nav: 'experiments',
    mount(el) {
      table = h('div', { id: 'experiments' });
      fill(el, h('div', { class: 'page-head' }, h('h1', {}, 'Experiments')), h('section', { class: 'card flush' }, table));
    },
    async update() {
      list = (await get('/api/v1/experiments')).experiments;
      // Ages move on every second, so the signature includes the minute.
      whenChanged(memo, 'table', [list, Math.floor(Date.now() / 10000)], render);
    },
  };
}
