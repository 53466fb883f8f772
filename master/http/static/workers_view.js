// #/workers — workers and their slots: who runs what.

import { get } from './api.js';
import { h, fill, fmtAge, fmtTime, whenChanged } from './util.js';

export function workersView() {
  const memo = {};
  const experimentOf = {};  // trial id -> experiment id; never changes
  let el;
  function render(agents) {
    if (agents.length === 0) {
      return fill(el, h('section', { class: 'card' }, h('p', {}, 'No workers have connected.'),
        h('p', { class: 'muted' }, 'Start one with ', h('code', {}, 'det-worker --master HOST:PORT --slots 2'))));
    }
    return fill(el, agents.map((a) => {
      const used = a.slots.filter((s) => Number(s.trial_id)).length;
      return h('section', { class: 'card', dataset: { agent: a.id } },
        h('div', { class: 'card-head' },
          h('h2', {}, a.id, ' ', h('span', { class: `badge ${a.connected ? 'state-active' : 'state-error'}` }, a.connected ? 'connected' : 'disconnected')),
          h('span', { class: 'muted' }, `${used} of ${a.slots.length} slots busy`)),
        h('p', { class: 'muted small' }, `${a.address || 'unknown address'} · det ${a.version || '?'} · registered ${fmtTime(a.registered_time_us)} · last heartbeat ${fmtAge(a.last_heartbeat_us)}`),
        h('div', { class: 'slots' }, a.slots.map((s) => {
          const busy = Number(s.trial_id) > 0;
          return h('div', { class: `slot ${busy ? 'busy' : 'free'}`, dataset: { slot: s.id } },
            h('div', { class: 'slot-id' }, `slot ${s.id}`),
            h('div', { class: 'muted small' }, `${s.type}${s.device && s.device !== s.type ? ` · ${s.device}` : ''}`),
            busy ? h('div', {}, h('a', { href: `#/trials/${s.trial_id}` }, `trial ${s.trial_id}`),
              experimentOf[s.trial_id] ? [' of ', h('a', { href: `#/experiments/${experimentOf[s.trial_id]}` }, `experiment ${experimentOf[s.trial_id]}`)] : null)
              : h('span', { class: 'muted' }, 'free'));
        })));
    }));
  }
  return {
    title: 'Workers',
    nav: 'workers',
    mount(root) {
      el = h('div', { id: 'workers' });
      fill(root, h('div', { class: 'page-head' }, h('h1', {}, 'Workers and slots')), el);
    },
    async update() {
      const { agents } = await get('/api/v1/agents');
      agents.sort((a, b) => a.id.localeCompare(b.id));
      const unknown = agents.flatMap((a) => a.slots.map((s) => s.trial_id))
        .filter((t) => Number(t) > 0 && !(t in experimentOf));
      await Promise.all([...new Set(unknown)].map(async (t) => {
        experimentOf[t] = (await get(`/api/v1/trials/${t}`)).experiment_id;
      }));
      whenChanged(memo, 'agents', [agents, Math.floor(Date.now() / 10000)], () => render(agents));
    },
  };
}
