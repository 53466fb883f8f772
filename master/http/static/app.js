// The page's entry point: a hash router over the views, and one polling
// loop that refreshes the current view and the header every two seconds,
// so what the master learns shows up without reloading.

import { get } from './api.js';
import { experimentsView } from './experiments_view.js';
import { experimentView } from './experiment_view.js';
import { trialView } from './trial_view.js';
import { workersView } from './workers_view.js';
import { h, fill } from './util.js';

const POLL_MS = 2000;

let view = null;
let generation = 0;  // bumps on navigation; a stale refresh's result is dropped
let timer = null;
let banner, content;

function viewFor(hash) {
  let m;
  if ((m = hash.match(/^#\/experiments\/(\d+)$/))) return experimentView(m[1]);
  if ((m = hash.match(/^#\/trials\/(\d+)$/))) return trialView(m[1]);
  if (hash === '#/workers') return workersView();
  if (hash === '' || hash === '#' || hash === '#/') return experimentsView();
  return {
    title: 'Not found',
    mount: (el) => fill(el, h('section', { class: 'card' }, h('h1', {}, 'No such page'), h('p', {}, h('a', { href: '#/' }, 'All experiments')))),
    update: async () => {},
  };
}

let storeDown = null;  // the master's store outage, shown above the view

async function refreshHeader() {
  const m = await get('/api/v1/master');
  const el = document.getElementById('master-info');
  fill(el,
    h('span', { class: 'live-dot', title: 'updating live' }),
    `det ${m.version} · ${m.num_agents} worker${m.num_agents === 1 ? '' : 's'} · `,
    h('span', { id: 'slots-used' }, `${m.slots_used}/${m.slots_total} slots busy`));
  storeDown = m.store_available ? null
    : `Store unavailable since ${new Date(Number(m.store_unavailable_since_us) / 1000).toLocaleString()}: ${m.store_error}. ` +
      'The master retries with backoff; nothing can change until it recovers.';
}

function showError(e) {
  const text = e.status === 404 ? e.message
    : `Cannot refresh: ${e.message}. Retrying every ${POLL_MS / 1000} s.`;
  fill(banner, text);
  banner.hidden = false;
  document.getElementById('master-info').classList.add('offline');
}

// One refresh at a time: a tick asked for while one runs (navigation,
// resize) runs right after it instead of beside it.
let running = false;
let again = false;

async function tick() {
  if (running) { again = true; return; }
  running = true;
  clearTimeout(timer);
  const gen = generation;
  if (document.visibilityState !== 'hidden') {
    try {
      await Promise.all([view.update(), refreshHeader()]);
      if (gen === generation) {
        if (storeDown) {
          fill(banner, storeDown);
          banner.hidden = false;
        } else {
          banner.hidden = true;
        }
        document.getElementById('master-info').classList.remove('offline');
      }
    } catch (e) {
      if (gen === generation && e.status !== 401) showError(e);
    }
  }
  running = false;
  if (again || gen !== generation) {
    again = false;
    tick();
    return;
  }
  timer = setTimeout(tick, POLL_MS);
}

function navigate() {
  generation++;
  view = viewFor(location.hash);
  document.title = `${view.title} · det`;
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === view.nav);
  }
  content = h('div', { class: 'view' });
  banner = h('div', { class: 'banner', role: 'status', hidden: true });
  fill(document.getElementById('app'), banner, content);
  view.mount(content);
  window.scrollTo(0, 0);
  tick();
}

window.addEventListener('hashchange', navigate);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') tick();
});
let resizeTimer = null;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(tick, 200);
});
navigate();
