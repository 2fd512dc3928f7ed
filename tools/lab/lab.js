// What the JupyterLab drivers (run_cell.js, widgets.js) share: their options, timed progress
// lines on stderr, and a headless Chromium of the system's (/usr/bin/chromium, or $CHROMIUM)
// through playwright-core, in a throw-away profile.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

// --url URL --token TOKEN --notebook NAME --out DIR [--timeout SECONDS]
function parseArgs(argv, script, defaultTimeout) {
  const usage = `usage: ${script} --url URL --token TOKEN --notebook NAME --out DIR [--timeout SECONDS]`;
  const opts = { timeout: defaultTimeout };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!['url', 'token', 'notebook', 'out', 'timeout'].includes(key) || argv[i + 1] === undefined) {
      throw new Error(`unknown or incomplete option ${argv[i]}\n${usage}`);
    }
    opts[key] = argv[i + 1];
  }
  for (const k of ['url', 'token', 'notebook', 'out']) {
    if (!opts[k]) throw new Error(`--${k} is required\n${usage}`);
  }
  opts.timeout = Number(opts.timeout);
  return opts;
}

const started = Date.now();
// One line on stderr, with the seconds since the script started.
function milestone(what) {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${what}\n`);
}

// Chromium with a fresh profile and one page; `close()` ends it and removes the profile.
async function openBrowser(viewport) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fastai-lab-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport,
  });
  const page = context.pages()[0] || await context.newPage();
  const close = async () => {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  return { page, close };
}

// Runs `main`; on failure prints the error after the script's name and exits 1.
function runMain(script, main) {
  main().catch((e) => {
    process.stderr.write(`${script}: ${e.stack || e}\n`);
    process.exit(1);
  });
}

module.exports = { parseArgs, milestone, openBrowser, runMain };
