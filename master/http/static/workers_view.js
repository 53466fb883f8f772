// #/workers — workers and their slots: who runs what.

import { get } from './api.js';
import { h, fill, fmtAge, fmtTime, whenChanged } from './util.js';

export function workersView() {
  const memo = {};
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
            busy ? h('a', { href: `#/trials/${s.trial_id}` }, `trial ${s.trial_id}`) : h('span', { class: 'muted' }, 'free'));
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
      whenChanged(memo, 'agents', [agents, Math.floor(Date.now() / 10000)], () => render(agents));
    },
  };
}
