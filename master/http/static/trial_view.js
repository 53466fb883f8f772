// #/trials/{id} — one trial: where it runs, its hyperparameters, metrics,
// checkpoint, restarts, and its logs (followed while it runs).

import { get } from './api.js';
import { colorFor, lineChart } from './chart.js';
import {
  h, fill, stateBadge, stateName, fmtNum, fmtTime, fmtDuration, usToDate, fmtBytes,
  flattenHparams, fmtValue, whenChanged, setOptions,
} from './util.js';

const MAX_LOG_LINES = 5000;  // older lines drop off the page, not the store

function kv(rows) {
  return h('table', { class: 'kv' }, h('tbody', {}, rows.filter(Boolean).map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v)))));
}

function stat(label, ...value) {
  return h('div', { class: 'stat' }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value));
}

export function trialView(id) {
  const memo = {};
  const el = {};
  let t, reports = [], checkpoints = [];
  let afterId = 0, logsLive = true, logCount = 0;

  // One chart per group, its metric chosen from what the trial reported.
  function renderChart(group, select, box, preferred) {
    const rs = reports.filter((r) => r.group === group);
    const names = [...new Set(rs.flatMap((r) => Object.keys(r.metrics)))].sort();
    setOptions(select, names, names.includes(preferred) ? preferred : names[0]);
    const metric = select.value;
    const series = [{
      name: metric, label: metric, color: colorFor(group === 'METRIC_GROUP_VALIDATION' ? 0 : 1),
      points: rs.filter((r) => r.metrics[metric] !== undefined).map((r) => [Number(r.steps_completed), r.metrics[metric]]),
    }];
    whenChanged(memo, group, [box.clientWidth, metric, series], () => lineChart(box, {
      series, xLabel: 'batches', yLabel: metric, height: 240, empty: 'Nothing reported yet.',
    }));
  }

  function renderInfo() {
    const start = usToDate(t.start_time_us), end = usToDate(t.end_time_us);
    document.title = `Trial ${id} · ${stateName(t.state)} · det`;
    fill(el.head,
      h('div', { class: 'title' }, h('h1', {}, `Trial ${t.id}`), stateBadge(t.state)),
      t.message ? h('p', { class: 'note' }, t.message) : null);
    fill(el.crumbs, h('a', { href: '#/' }, 'Experiments'), ' / ',
      h('a', { href: `#/experiments/${t.experiment_id}` }, `Experiment ${t.experiment_id}`), ' / ', `Trial ${id}`);
    fill(el.stats,
      stat('Batches', `${t.steps_completed}`, Number(t.target_batches) ? h('div', { class: 'muted small' }, `of ${t.target_batches}`) : null),
      stat('Best metric', t.has_best_metric ? fmtNum(t.best_metric) : '—'),
      stat('Restarts', String(t.restarts)),
      t.rung >= 0 ? stat('ASHA rung', String(t.rung + 1)) : null,
      stat('Worker', t.agent_id || '—', t.slot_ids.length ? h('div', { class: 'muted small' }, `slots ${t.slot_ids.join(', ')}`) : null),
      stat('Ran', start ? fmtDuration((end || new Date()) - start) : '—', h('div', { class: 'muted small' }, start ? `since ${fmtTime(t.start_time_us)}` : 'not started')));
    const hp = flattenHparams(t.hparams);
    fill(el.hparams, kv(Object.keys(hp).sort().map((k) => [k, fmtValue(hp[k])])));
    const names = [...new Set([...Object.keys(t.best_validation_metrics), ...Object.keys(t.latest_validation_metrics)])].sort();
    fill(el.validation, names.length === 0 ? h('p', { class: 'muted' }, 'No validation yet.')
      : h('table', { class: 'data compact' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Metric'), h('th', { class: 'num' }, 'At best'), h('th', { class: 'num' }, 'Latest'))),
        h('tbody', {}, names.map((n) => h('tr', {}, h('td', {}, n),
          h('td', { class: 'num' }, fmtNum(t.best_validation_metrics[n])), h('td', { class: 'num' }, fmtNum(t.latest_validation_metrics[n])))))));
    fill(el.checkpoint, checkpoints.length === 0 ? h('p', { class: 'muted' }, 'No checkpoint yet.')
      : h('table', { class: 'data compact', id: 'checkpoints' },
        h('thead', {}, h('tr', {}, h('th', {}, 'UUID'), h('th', { class: 'num' }, 'Batches'), h('th', {}, 'Taken'), h('th', { class: 'num' }, 'Size'), h('th', {}, 'State'))),
        h('tbody', {}, checkpoints.map((c) => h('tr', {},
          h('td', {}, h('code', { title: c.uuid }, c.uuid.slice(0, 8))),
          h('td', { class: 'num' }, String(c.steps_completed)),
          h('td', {}, fmtTime(c.time_us)),
          h('td', { class: 'num' }, fmtBytes(c.size_bytes)),
          h('td', { class: c.state === 'CHECKPOINT_STATE_ACTIVE' ? '' : 'muted' },
            String(c.state || '').replace('CHECKPOINT_STATE_', '').toLowerCase()))))));
    fill(el.run, kv([
      ['Experiment', h('a', { href: `#/experiments/${t.experiment_id}` }, t.experiment_id)],
      ['Seed', String(t.seed)],
      ['Started', fmtTime(t.start_time_us)],
      ['Ended', fmtTime(t.end_time_us)],
      ['Exit', t.exit_reason === 'EXIT_REASON_UNSPECIFIED' ? '—' : t.exit_reason.replace(/^EXIT_REASON_/, '').toLowerCase()],
    ]));
  }

  async function pollLogs() {
    if (!logsLive && afterId > 0) return;
    const page = await get(`/api/v1/trials/${id}/logs?after_id=${afterId}&limit=1000`);
    logsLive = page.live;
    if (page.logs.length) {
      const atBottom = el.logs.scrollTop + el.logs.clientHeight >= el.logs.scrollHeight - 4;
      for (const line of page.logs) {
        el.logs.append(h('div', { class: `log-line ${line.source}` },
          h('span', { class: 'log-time' }, usToDate(line.time_us)?.toLocaleTimeString() || ''), ' ', line.line));
        afterId = Number(line.id);
        logCount++;
      }
      while (logCount > MAX_LOG_LINES) { el.logs.firstChild.remove(); logCount--; }
      if (el.follow.checked || atBottom) el.logs.scrollTop = el.logs.scrollHeight;
    }
    el.logState.textContent = logsLive ? 'live' : `${logCount} line${logCount === 1 ? '' : 's'}, ended`;
    el.logState.className = `badge ${logsLive ? 'live' : 'state-completed'}`;
    if (page.logs.length === 1000) await pollLogs();
  }

  return {
    title: `Trial ${id}`,
    nav: 'experiments',
    mount(root) {
      el.crumbs = h('p', { class: 'crumbs' });
      el.head = h('div', { class: 'page-head' });
      el.stats = h('div', { class: 'stats' });
      el.valMetric = h('select', { 'aria-label': 'Validation metric', onchange: () => renderChart('METRIC_GROUP_VALIDATION', el.valMetric, el.valChart, 'validation_accuracy') });
      el.valChart = h('div', { class: 'chart-box', id: 'validation-chart' });
      el.trainMetric = h('select', { 'aria-label': 'Training metric', onchange: () => renderChart('METRIC_GROUP_TRAINING', el.trainMetric, el.trainChart, 'loss') });
      el.trainChart = h('div', { class: 'chart-box', id: 'training-chart' });
      el.hparams = h('div');
      el.validation = h('div');
      el.checkpoint = h('div');
      el.run = h('div');
      el.follow = h('input', { type: 'checkbox', checked: true, id: 'follow' });
      el.logState = h('span', { class: 'badge' });
      el.logs = h('div', { class: 'logs', id: 'logs', role: 'log' });
      fill(root, el.crumbs, el.head, el.stats,
        h('div', { class: 'grid-2' },
          h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Validation'), el.valMetric), el.valChart),
          h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Training'), el.trainMetric), el.trainChart)),
        h('div', { class: 'grid-3' },
          h('section', { class: 'card' }, h('h2', {}, 'Hyperparameters'), el.hparams),
          h('section', { class: 'card' }, h('h2', {}, 'Validation metrics'), el.validation),
          h('section', { class: 'card' }, h('h2', {}, 'Checkpoints'), el.checkpoint, h('h2', {}, 'Run'), el.run)),
        h('section', { class: 'card' },
          h('div', { class: 'card-head' }, h('h2', {}, 'Logs ', el.logState),
            h('label', { class: 'check' }, el.follow, ' Follow')),
          el.logs));
    },
    async update() {
      [t, { reports }, { checkpoints }] = await Promise.all([get(`/api/v1/trials/${id}`), get(`/api/v1/trials/${id}/metrics`), get(`/api/v1/trials/${id}/checkpoints`)]);
      whenChanged(memo, 'info', [t, Math.floor(Date.now() / 10000)], renderInfo);
      renderChart('METRIC_GROUP_VALIDATION', el.valMetric, el.valChart, 'validation_accuracy');
      renderChart('METRIC_GROUP_TRAINING', el.trainMetric, el.trainChart, 'loss');
      await pollLogs();
    },
  };
}
