// `make ui-test`: JupyterLab in a headless browser, as a class meets it. A maintainer's check, not part of `make test`.
//
// Starts JupyterLab the way `make lab` does (the course's kernel only, its settings), on copies of lessons 00 and 06
// in a temporary folder (nothing is saved into notebooks/, nothing written in the home folder), then in Chromium:
//   - opens each lesson: the course's kernel starts by itself, no news pop-up, and the file stays unchanged;
//   - runs it from the menu (Run > Run All Cells), saves it, and checks every code cell ran without an error;
//   - in lesson 06, types a dialogue into the playground, presses Summarize and reads the table it shows.
// Needs: PY (the venv's python), UI_BROWSER (a Chromium), NODE_PATH with playwright-core, LAB_ARGS (make lab's).
'use strict';

const { chromium } = require('playwright-core');
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..');
const PY = process.env.PY || path.join(ROOT, '.venv', 'bin', 'python');
const BROWSER = process.env.UI_BROWSER || '/usr/bin/chromium';
const LAB_ARGS = (process.env.LAB_ARGS || '').split(/\s+/).filter(Boolean);
const KERNEL = process.env.KERNEL_NAME || 'flan-course';
const LESSONS = ['00_welcome_and_data.ipynb', '06_putting_it_all_together.ipynb'];
const TOKEN = 'ui-test-' + process.pid;
const LESSON_TIMEOUT_MS = 15 * 60 * 1000;
const DIALOGUE = '#Person1#: Hello, I would like to book a table for two at seven tonight.\n' +
  '#Person2#: Certainly. May I have your name, please?\n' +
  '#Person1#: Kim. And could we sit by the window?\n' +
  '#Person2#: Of course. A table for two by the window at seven, Mr. Kim.';

const failures = [];
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures.push(what); };
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function freePort() {
  const net = require('net');
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => { const { port } = server.address(); server.close(() => resolve(port)); });
    server.on('error', reject);
  });
}

async function api(base, route, options = {}) {
  const response = await fetch(`${base}${route}`, { ...options, headers: { Authorization: `token ${TOKEN}` } });
  if (!response.ok) throw new Error(`${route}: HTTP ${response.status}`);
  return response.json();
}

async function idleFor(base, ms, timeout) {
  // The lesson's kernel reports "idle" for `ms` in a row (cells queued by Run All keep it busy in between).
  const end = Date.now() + timeout;
  let idleSince = null;
  while (Date.now() < end) {
    const sessions = await api(base, '/api/sessions');
    const busy = sessions.some(s => s.kernel && s.kernel.execution_state !== 'idle');
    idleSince = busy ? null : (idleSince ?? Date.now());
    if (idleSince && Date.now() - idleSince >= ms) return;
    await sleep(1000);
  }
  throw new Error('the kernel did not finish in time');
}

async function menu(page, top, item) {
  await page.locator('.lm-MenuBar-itemLabel', { hasText: new RegExp(`^${top}$`) }).click();
  await page.locator('.lm-Menu-itemLabel', { hasText: new RegExp(`^${item}$`) }).first().click();
}

async function lesson(page, base, name) {
  console.log(`\n${name}`);
  const before = fs.readFileSync(path.join(process.env.UI_WORK, name), 'utf8');
  await page.goto(`${base}/lab/tree/${name}?token=${TOKEN}`);
  await page.locator('.jp-Notebook').first().waitFor({ timeout: 60000 });
  // The course's kernel starts by itself (no "Select Kernel" dialog), under its name.
  await page.locator('.jp-Toolbar-kernelName', { hasText: `Python (${KERNEL})` }).first().waitFor({ timeout: 60000 });
  await idleFor(base, 2000, 60000);
  check(await page.locator('.jp-Dialog').count() === 0, 'no dialog on opening (the kernel was found)');
  const dirty = await page.locator('.jp-mod-current.jp-mod-dirty, .lm-TabBar-tab.lm-mod-current.jp-mod-dirty').count();
  const info = (await api(base, '/api/kernelspecs')).kernelspecs;
  console.log(`     kernels listed: ${Object.keys(info).join(', ')}; opened lesson marked changed: ${dirty > 0}`);
  const toasts = await page.locator('.Toastify').allInnerTexts();
  check(!toasts.join(' ').includes('Jupyter news'), 'no "official Jupyter news" pop-up');

  await menu(page, 'Run', 'Run All Cells');
  await page.waitForTimeout(3000);
  await idleFor(base, 5000, LESSON_TIMEOUT_MS);
  await menu(page, 'File', 'Save Notebook');
  await page.waitForTimeout(2000);
  const saved = (await api(base, `/api/contents/${name}?content=1`)).content;
  const code = saved.cells.filter(c => c.cell_type === 'code');
  const unrun = code.filter(c => c.execution_count === null).length;
  const errors = code.flatMap(c => c.outputs.filter(o => o.output_type === 'error').map(o => `${o.ename}: ${o.evalue}`));
  check(unrun === 0, `every code cell ran (${code.length - unrun}/${code.length})`);
  check(errors.length === 0, `no cell raised${errors.length ? ': ' + errors.join(' | ') : ''}`);
  check(saved.metadata.kernelspec && saved.metadata.kernelspec.name === KERNEL, `saved with the kernel ${KERNEL}`);
  check(JSON.stringify(JSON.parse(before).metadata.kernelspec) === JSON.stringify(saved.metadata.kernelspec),
    'the kernelspec JupyterLab writes is the committed one');
  return saved;
}

async function playground(page) {
  const box = page.locator('.widget-textarea textarea').first();
  await box.waitFor({ timeout: 30000 });
  const table = page.locator('.widget-output table').first();
  const opened = await table.innerText();
  check(/multi-task/.test(opened), 'the playground opened with a table of summaries');
  await box.fill(DIALOGUE);
  await page.locator('.widget-dropdown select').first().selectOption('tldr');
  await page.locator('button.widget-button', { hasText: 'Summarize' }).first().click();
  await page.waitForFunction(previous => {
    const t = document.querySelector('.widget-output table');
    return t && t.innerText !== previous;
  }, opened, { timeout: 120000 });
  const rows = await page.locator('.widget-output table tbody tr').allInnerTexts();
  console.log('     the playground answered:\n       ' + rows.map(r => r.replace(/\s+/g, ' ')).join('\n       '));
  check(rows.length === 4 && rows.every(r => r.trim().split(/\s+/).length >= 2), 'four models, each with a summary');
  const align = await page.locator('.widget-output table td').nth(1).evaluate(td => getComputedStyle(td).textAlign);
  check(align === 'left', `summaries left-aligned (${align})`);
  const select = page.locator('.widget-dropdown select').first();
  const fits = await select.evaluate(s => s.scrollWidth <= s.clientWidth + 1);
  check(fits, 'the template names fit their dropdown');
}

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'flan-ui-test-'));
  process.env.UI_WORK = path.join(work, 'lessons');
  fs.mkdirSync(process.env.UI_WORK);
  for (const name of LESSONS) fs.copyFileSync(path.join(ROOT, 'notebooks', name), path.join(process.env.UI_WORK, name));
  const env = {
    ...process.env, JUPYTER_DATA_DIR: path.join(work, 'data'), JUPYTER_CONFIG_DIR: path.join(work, 'config'),
    JUPYTER_RUNTIME_DIR: path.join(work, 'runtime'), JUPYTERLAB_SETTINGS_DIR: path.join(work, 'settings'),
    JUPYTERLAB_WORKSPACES_DIR: path.join(work, 'workspaces'), COURSE_RESULTS_DIR: path.join(work, 'results'),
    COURSE_PROFILE: process.env.COURSE_PROFILE || 'smoke',
  };
  // Every cell in the page, not only those in view (so the playground's widgets are there to type into).
  const tracker = path.join(env.JUPYTERLAB_SETTINGS_DIR, '@jupyterlab', 'notebook-extension');
  fs.mkdirSync(tracker, { recursive: true });
  fs.writeFileSync(path.join(tracker, 'tracker.jupyterlab-settings'), '{"windowingMode": "none"}');
  const install = spawnSync(PY, ['-m', 'ipykernel', 'install', '--user', '--name', KERNEL,
    '--display-name', `Python (${KERNEL})`], { env, encoding: 'utf8' });
  if (install.status !== 0) throw new Error(install.stderr);

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const root = typeof process.getuid === 'function' && process.getuid() === 0 ? ['--allow-root'] : [];
  const lab = spawn(PY, ['-m', 'jupyter', 'lab', '--no-browser', `--port=${port}`, '--ip=127.0.0.1',
    `--ServerApp.token=${TOKEN}`, ...root, ...LAB_ARGS, process.env.UI_WORK],
  { env, detached: true, stdio: ['ignore', fs.openSync(path.join(work, 'lab.log'), 'w'), fs.openSync(path.join(work, 'lab.log'), 'a')] });
  const stopLab = () => { try { process.kill(-lab.pid, 'SIGTERM'); } catch { /* already gone */ } };
  process.on('SIGINT', () => { stopLab(); process.exit(130); });
  let browser;
  try {
    for (let i = 0; ; i++) {
      try { await api(base, '/api/status'); break; } catch (e) { if (i > 90) throw new Error('JupyterLab did not start'); await sleep(1000); }
    }
    browser = await chromium.launch({ executablePath: BROWSER, args: ['--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await lesson(page, base, LESSONS[0]);
    await page.close();
    const page06 = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await lesson(page06, base, LESSONS[1]);
    await playground(page06);
    await page06.screenshot({ path: path.join(process.env.UI_SHOTS || work, 'playground.png') });
  } catch (error) {
    failures.push(String(error && error.stack || error));
    console.log(`FAIL ${error && error.message}\n     JupyterLab's log: ${path.join(work, 'lab.log')}`);
  } finally {
    if (browser) await browser.close();
    stopLab();
    await new Promise(resolve => { lab.once('exit', resolve); setTimeout(resolve, 10000); });
  }
  if (failures.length === 0) fs.rmSync(work, { recursive: true, force: true });
  console.log(failures.length ? `\n${failures.length} check(s) failed (files kept in ${work})` : '\nui-test: all checks passed');
  process.exit(failures.length ? 1 : 0);
}

main();
