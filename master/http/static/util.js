// Small DOM and formatting helpers shared by the views.

// h('a', {href: '#/', class: 'x', onclick: fn}, child, ...) builds an element.
// Children may be strings, numbers, nodes, arrays, or null (skipped).
export function h(tag, attrs = {}, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// Replaces the children of `el`.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A thin bar with the percentage beside it; `fraction` in [0, 1].
export function progressBar(fraction) {
  const pct = Math.round(Math.min(1, Math.max(0, Number(fraction) || 0)) * 100);
  return h('div', { class: 'progress', title: `${pct}% done` },
    h('div', { class: 'progress-track' }, h('div', { class: 'progress-bar', style: `width:${pct}%` })),
    h('span', { class: 'progress-text' }, `${pct}%`));
}

// "STATE_STOPPING_CANCELED" -> "STOPPING CANCELED".
export function stateName(s) {
  return String(s || '').replace(/^STATE_/, '').replace(/_/g, ' ');
}

export function isTerminal(s) {
  return s === 'STATE_COMPLETED' || s === 'STATE_CANCELED' || s === 'STATE_ERROR';
}

export function stateBadge(s) {
  const cls = String(s || '').replace(/^STATE_/, '').toLowerCase();
  return h('span', { class: `badge state-${cls}` }, stateName(s));
}

// A metric value with 4 significant digits, or an em dash.
export function fmtNum(v) {
  if (v === null || v === undefined || Number.isNaN(Number(v))) return '—';
  const n = Number(v);
  if (Number.isInteger(n) && Math.abs(n) < 1e6) return String(n);
  if (Math.abs(n) >= 1e5 || (Math.abs(n) < 1e-3 && n !== 0)) return n.toExponential(2);
  return Number(n.toPrecision(4)).toString();
}

// Microseconds since the epoch (a string in proto JSON) -> Date or null.
export function usToDate(us) {
  const n = Number(us);
  return n > 0 ? new Date(n / 1000) : null;
}

// "42s", "5m", "3h 20m", "2d 4h".
export function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const hr = Math.floor(m / 60);
  if (hr < 24) return `${hr}h ${m % 60}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

export function fmtAge(us) {
  const d = usToDate(us);
  return d ? `${fmtDuration(Date.now() - d.getTime())} ago` : '—';
}

export function fmtTime(us) {
  const d = usToDate(us);
  return d ? d.toLocaleString() : '—';
}

export function fmtBytes(n) {
  n = Number(n) || 0;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

// Nested hyperparameter groups flattened to dotted names:
// {optimizer: {lr: 0.1}} -> {"optimizer.lr": 0.1}.
export function flattenHparams(obj, prefix = '', out = {}) {
  for (const [k, v] of Object.entries(obj || {})) {
    const name = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flattenHparams(v, name, out);
    else out[name] = v;
  }
  return out;
}

export function fmtValue(v) {
  if (typeof v === 'number') return fmtNum(v);
  if (v === null || v === undefined) return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// A table whose rows re-sort when a header is clicked. `columns` are
// {key, label, value(row) -> sortable, render(row) -> node|string, num}.
// `state` {key, dir} persists the choice across re-renders.
// With `stack`, a phone shows each row as a card of labelled cells (the
// column marked `lead` as its title) instead of a table to scroll sideways.
export function sortableTable(columns, rows, state, { rowAttrs, onSort, stack = false } = {}) {
  const col = columns.find((c) => c.key === state.key) || columns[0];
  const sorted = [...rows].sort((a, b) => {
    const x = col.value(a), y = col.value(b);
    const missing = (v) => v === null || v === undefined || v === '' || Number.isNaN(v);
    if (missing(x) && missing(y)) return 0;
    if (missing(x)) return 1;  // blanks last, whichever the direction
    if (missing(y)) return -1;
    const c = typeof x === 'number' && typeof y === 'number'
      ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
    return state.dir === 'desc' ? -c : c;
  });
  const head = h('tr', {}, columns.map((c) => {
    const active = c.key === col.key;
    return h('th', {
      class: [c.num ? 'num' : '', 'sortable', active ? `sorted-${state.dir}` : ''].join(' ').trim(),
      'aria-sort': active ? (state.dir === 'desc' ? 'descending' : 'ascending') : 'none',
      dataset: { key: c.key },
      tabindex: 0,
      onclick: () => {
        if (state.key === c.key) state.dir = state.dir === 'asc' ? 'desc' : 'asc';
        else Object.assign(state, { key: c.key, dir: c.num ? 'desc' : 'asc' });
        if (onSort) onSort();
      },
      onkeydown: (e) => { if (e.key === 'Enter') e.target.click(); },
    }, c.label);
  }));
  const body = sorted.map((r) => h('tr', rowAttrs ? rowAttrs(r) : {},
    columns.map((c) => h('td', {
      class: [c.num ? 'num' : '', c.lead ? 'lead' : ''].join(' ').trim() || null, 'data-label': c.label,
    }, c.render ? c.render(r) : fmtValue(c.value(r))))));
  return h('div', { class: 'table-wrap' },
    h('table', { class: stack ? 'data stack' : 'data' }, h('thead', {}, head), h('tbody', {}, body)));
}

// Runs render() only when `data` differs from what it was at the last call
// with the same `key`, so polling does not redraw (and flicker) what did
// not change.
export function whenChanged(memo, key, data, render) {
  const sig = JSON.stringify(data);
  if (memo[key] === sig) return;
  memo[key] = sig;
  render();
}

// Asks the user to confirm in the page's dialog; resolves to true on OK.
export function confirmDialog(title, text, okLabel) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  dlg.returnValue = '';
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
  });
}

// A select whose options can be refreshed without losing the choice.
export function setOptions(select, values, preferred) {
  const current = select.value || preferred;
  const want = JSON.stringify(values);
  if (select.dataset.options !== want) {
    select.dataset.options = want;
    fill(select, values.map((v) => h('option', { value: v }, v)));
  }
  select.value = values.includes(current) ? current : (values.includes(preferred) ? preferred : values[0] || '');
}
