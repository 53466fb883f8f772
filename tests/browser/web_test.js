// End-to-end test of det-master's web page in headless Chromium.
//
// browser_cluster starts a real master (HTTP port on), a worker and an
// adaptive ASHA experiment of det-fake-trial trials. This script opens the
// pages at a desktop and a phone width and checks what a user relies on:
// the experiments table lists the experiment, the learning-curve chart has
// one line with points per validated trial and grows without a reload,
// pause/activate work from the page through the confirmation dialog, and
// the trial and workers pages show logs, metrics and slots. Screenshots go
// to --out. Exit status: 0 passed, 1 failed.
//
// Usage: node web_test.js --cluster PATH/browser_cluster --out DIR

'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { chromium } = require('playwright-core');

const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`missing ${name}`);
  return process.argv[i + 1];
}

let passed = 0;
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  passed++;
  console.log(`  ok  ${what}`);
}

// Starts browser_cluster and resolves with its JSON line.
function startCluster(bin) {
  const child = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const info = new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout });
    lines.once('line', (l) => resolve(JSON.parse(l)));
    child.once('exit', (code) => reject(new Error(`browser_cluster exited with ${code} before starting`)));
  });
  return { child, info };
}

async function api(url, p) {
  const res = await fetch(url + p);
  if (!res.ok) throw new Error(`${p}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function until(what, fn, timeoutMs = 60000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// Trial ids that have at least one validation report, from the JSON API.
async function validatedTrials(url, id) {
  const { reports } = await api(url, `/api/v1/experiments/${id}/metrics?group=validation`);
  return new Set(reports.map((r) => r.trial_id));
}

async function chartLines(page) {
  return page.$$eval('#learning-curves svg g.series', (gs) => gs.map((g) => ({
    name: g.dataset.name, points: g.querySelectorAll('circle.point').length, d: g.querySelector('path').getAttribute('d'),
  })));
}

async function noHorizontalScroll(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
}

async function desktop(browser, url, id, out) {
  const ctx = await browser.newContext({ viewport: DESKTOP });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

  console.log('experiments page');
  await page.goto(`${url}/#/`);
  const row = await page.waitForSelector(`#experiments tr[data-id="${id}"]`, { timeout: 30000 });
  check((await row.textContent()).includes('browser-asha'), 'the experiments table lists the experiment by name');
  check(/ACTIVE|PAUSED|COMPLETED/.test(await row.textContent()), 'its row shows its state');
  await page.screenshot({ path: path.join(out, 'desktop-experiments.png'), fullPage: true });

  console.log('experiment page, live');
  await row.click();
  await page.waitForSelector('#learning-curves');
  check(page.url().endsWith(`#/experiments/${id}`), 'clicking the row opens the experiment');
  await page.evaluate(() => { window.notReloaded = true; });
  await page.waitForFunction(() => document.querySelectorAll('#learning-curves svg g.series').length >= 2, null, { timeout: 90000 });
  const early = await chartLines(page);
  const earlyPoints = early.reduce((n, l) => n + l.points, 0);
  await page.screenshot({ path: path.join(out, 'desktop-experiment-running.png'), fullPage: true });
  await page.waitForFunction((n) => document.querySelectorAll('#learning-curves circle.point').length > n, earlyPoints, { timeout: 60000 });
  check(await page.evaluate(() => window.notReloaded === true), 'new validation points appear on the chart without a reload');

  console.log('pause and activate from the page');
  await page.click('button[data-action="pause"]');
  await page.waitForSelector('dialog#confirm[open]');
  check((await page.textContent('#confirm-title')).includes(`Pause experiment ${id}`), 'pause asks for confirmation');
  await page.screenshot({ path: path.join(out, 'desktop-pause-confirm.png') });
  await page.click('#confirm-ok');
  await page.waitForFunction(() => document.querySelector('.page-head .badge')?.textContent === 'PAUSED', null, { timeout: 15000 });
  check((await api(url, `/api/v1/experiments/${id}`)).state === 'STATE_PAUSED', 'the master has the experiment paused');
  check(await page.isDisabled('button[data-action="pause"]') && await page.isEnabled('button[data-action="activate"]'),
    'pause is disabled and activate enabled while paused');
  await until('running trials to stop', async () => (await api(url, `/api/v1/experiments/${id}`)).trials_running === 0, 60000);
  await page.waitForTimeout(2500);  // one refresh, so the picture shows the pause
  await page.screenshot({ path: path.join(out, 'desktop-experiment-paused.png'), fullPage: true });

  await page.click('button[data-action="activate"]');
  await page.waitForSelector('dialog#confirm[open]');
  await page.click('dialog#confirm button[value="cancel"]');
  await page.waitForTimeout(500);
  check((await api(url, `/api/v1/experiments/${id}`)).state === 'STATE_PAUSED', 'declining the dialog changes nothing');
  await page.click('button[data-action="activate"]');
  await page.click('#confirm-ok');
  await page.waitForFunction(() => document.querySelector('.page-head .badge')?.textContent !== 'PAUSED', null, { timeout: 15000 });
  check((await api(url, `/api/v1/experiments/${id}`)).state !== 'STATE_PAUSED', 'activate resumes the experiment');

  console.log('workers page while trials run');
  await page.click('nav a[data-nav="workers"]');
  const busy = await page.waitForSelector('#workers .slot.busy a[href^="#/trials/"]', { timeout: 15000 });
  check(/^trial \d+$/.test(await busy.textContent()), 'the workers page shows which trial a busy slot runs');
  await page.screenshot({ path: path.join(out, 'desktop-workers-busy.png'), fullPage: true });
  await page.goBack();
  await page.waitForSelector('#learning-curves svg g.series');

  console.log('waiting for the search to finish');
  const done = await until('the experiment to complete', async () => {
    const x = await api(url, `/api/v1/experiments/${id}`);
    return ['STATE_COMPLETED', 'STATE_CANCELED', 'STATE_ERROR'].includes(x.state) && x;
  }, 240000, 1000);
  check(done.state === 'STATE_COMPLETED', 'the experiment completed');
  await page.waitForFunction(() => document.querySelector('.page-head .badge')?.textContent === 'COMPLETED', null, { timeout: 15000 });
  const validated = await validatedTrials(url, id);
  const { trials } = await api(url, `/api/v1/experiments/${id}/trials`);
  await page.waitForFunction((n) => document.querySelectorAll('#learning-curves svg g.series').length === n, validated.size, { timeout: 15000 });
  const lines = await chartLines(page);
  check(lines.length === validated.size && validated.size === trials.length && trials.length >= 2,
    `the learning-curve chart has one line per trial (${lines.length} lines, ${trials.length} trials)`);
  check(lines.every((l) => validated.has(l.name) && l.points >= 1 && l.d.startsWith('M')),
    'every line has its trial\'s points');
  const chips = await page.$$eval('#asha .rung[data-rung="0"] .chip', (cs) => cs.length);
  check(chips === trials.length, 'the ASHA picture puts every trial in the first rung');
  const stopped = await page.$$eval('#asha .chip.stopped', (cs) => cs.length);
  const promoted = await page.$$eval('#asha .chip.promoted', (cs) => cs.length);
  check(stopped >= 1 && promoted >= 1, `it shows promoted (${promoted}) and stopped (${stopped}) trials`);
  check(await page.$$eval('#hp-scatter svg circle.dot', (d) => d.length) === trials.length,
    'the hyperparameter scatter has a point per trial');

  // Sort the trials table by the best metric, descending: the best comes first.
  // (Each click re-renders the table, so the header is looked up afresh.)
  const best = '#trials th[data-key="best"]';
  await page.click(best);
  if ((await page.getAttribute(best, 'aria-sort')) !== 'descending') await page.click(best);
  check((await page.getAttribute(best, 'aria-sort')) === 'descending', 'a header click sorts the trials table');
  const firstRow = await page.$eval('#trials tbody tr', (tr) => tr.dataset.trial);
  check(firstRow === done.best_trial_id, `sorting by best metric puts the best trial (${done.best_trial_id}) first`);
  await page.screenshot({ path: path.join(out, 'desktop-experiment-completed.png'), fullPage: true });

  console.log('trial page');
  await page.click(`#trials tbody tr[data-trial="${done.best_trial_id}"] a`);
  await page.waitForSelector('#logs .log-line', { timeout: 15000 });
  await page.waitForSelector('#validation-chart svg g.series circle.point');
  await page.waitForSelector('#training-chart svg g.series circle.point');
  check((await page.textContent('h1')).includes(`Trial ${done.best_trial_id}`), 'the trial page opens from the table');
  check(await page.$$eval('#logs .log-line', (l) => l.length) >= 1, 'the trial\'s logs are shown');
  await page.screenshot({ path: path.join(out, 'desktop-trial.png'), fullPage: true });

  console.log('workers page');
  await page.click('nav a[data-nav="workers"]');
  await page.waitForSelector('#workers .slot');
  check(await page.$$eval('#workers .slot', (s) => s.length) === 2, 'the workers page shows the worker\'s two slots');
  await page.screenshot({ path: path.join(out, 'desktop-workers.png'), fullPage: true });

  check(errors.length === 0, `no errors in the page's console (${errors.join('; ')})`);
  await ctx.close();
  return done;
}

async function phone(browser, url, id, best, out) {
  const ctx = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  console.log('phone width');
  for (const [name, hash, ready] of [
    ['experiments', '#/', `#experiments tr[data-id="${id}"]`],
    ['experiment', `#/experiments/${id}`, '#learning-curves svg g.series'],
    ['trial', `#/trials/${best}`, '#logs .log-line'],
    ['workers', '#/workers', '#workers .slot'],
  ]) {
    await page.goto(`${url}/${hash}`);
    await page.waitForSelector(ready, { timeout: 15000 });
    await page.waitForTimeout(300);
    check(await noHorizontalScroll(page), `the ${name} page fits a ${PHONE.width}px screen`);
    await page.screenshot({ path: path.join(out, `phone-${name}.png`), fullPage: true });
  }
  check(errors.length === 0, `no errors on the phone pages (${errors.join('; ')})`);
  await ctx.close();
}

async function main() {
  const clusterBin = arg('--cluster');
  const out = arg('--out');
  fs.mkdirSync(out, { recursive: true });
  const { child, info } = startCluster(clusterBin);
  let ok = false;
  let browser;
  try {
    const { url, experiment_id: id } = await info;
    console.log(`cluster at ${url}, experiment ${id}; screenshots in ${out}`);
    await until('the HTTP port', () => api(url, '/api/v1/master'), 30000);
    browser = await chromium.launch({ executablePath: process.env.DET_CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_FLAGS });
    const done = await desktop(browser, url, id, out);
    await phone(browser, url, id, done.best_trial_id, out);
    ok = true;
  } catch (e) {
    console.error(`FAILED: ${e.stack || e}`);
    child.stdin.write('dump\n');
  } finally {
    if (browser) await browser.close();
    child.stdin.end();
    await new Promise((r) => { if (child.exitCode !== null) r(); else child.once('exit', r); });
  }
  console.log(`${passed} passed, ${ok ? 0 : 1} failed`);
  process.exit(ok ? 0 : 1);
}

main();
