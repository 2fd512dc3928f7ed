#!/usr/bin/env node
// Opens a notebook in JupyterLab in headless Chromium, runs its first cell the way a user does
// (click, Shift+Enter), watches the cell's outputs while it runs, and saves screenshots.
//
//   node tools/lab/run_cell.js --url http://127.0.0.1:8888 --token TOKEN --notebook progress.ipynb \
//        --out target/ui [--timeout 600]
//
// Uses the system's Chromium (/usr/bin/chromium, or $CHROMIUM) through playwright-core: no browser
// is downloaded. Prints one JSON line with what the page showed (see `summary` below); exits 1
// with a message on stderr when something does not happen in time.
'use strict';

const fs = require('fs');
const path = require('path');
const { parseArgs, milestone, openBrowser, runMain } = require('./lab');

// What the first cell's output area shows now.
function outputState() {
  const cell = document.querySelector('.jp-Notebook .jp-CodeCell');
  if (!cell) return null;
  const prompt = cell.querySelector('.jp-InputArea-prompt');
  // Rich displays (HTML); stream text and errors are reported apart.
  const displays = [...cell.querySelectorAll('.jp-OutputArea-output[data-mime-type="text/html"]')];
  const text = (sel) => [...cell.querySelectorAll(sel)].map((e) => e.textContent.trim()).filter((t) => t);
  const bars = [...cell.querySelectorAll('.jp-OutputArea-output progress')];
  const tables = [...cell.querySelectorAll('.jp-OutputArea-output table')];
  return {
    prompt: prompt ? prompt.textContent.trim() : '',
    displays: displays.length,
    bars: bars.map((b) => ({ value: Number(b.getAttribute('value')), max: Number(b.getAttribute('max')) })),
    barText: bars.map((b) => b.parentElement.textContent.replace(/\s+/g, ' ').trim()),
    tables: tables.map((t) => ({
      header: [...t.querySelectorAll('thead th')].map((th) => th.textContent.trim()),
      rows: [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())),
    })),
    stderr: text('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'),
    errors: text('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]'),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2), 'run_cell.js', 600);
  fs.mkdirSync(opts.out, { recursive: true });
  const deadline = Date.now() + opts.timeout * 1000;
  const left = () => Math.max(1000, deadline - Date.now());
  const { page, close } = await openBrowser({ width: 1280, height: 800 });
  milestone('Chromium started');
  const summary = { samples: [], screenshots: [] };
  try {
    page.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
    const url = `${opts.url}/lab/tree/${encodeURIComponent(opts.notebook)}?token=${opts.token}`;
    await page.goto(url, { timeout: left() });
    milestone('JupyterLab page loaded');
    // The notebook is open and its kernel ("Rust (fastai)") is connected and idle.
    await page.waitForSelector('.jp-NotebookPanel .jp-CodeCell .cm-content', { timeout: left() });
    await page.waitForFunction(() => {
      const el = document.querySelector('.jp-NotebookPanel-toolbar .jp-KernelName, .jp-Toolbar-kernelName');
      return el && /Rust \(fastai\)/.test(el.textContent);
    }, null, { timeout: left() });
    summary.kernelName = await page.textContent('.jp-NotebookPanel-toolbar .jp-KernelName, .jp-Toolbar-kernelName');
    milestone(`notebook open on ${summary.kernelName.trim()}`);
    // Shift+Enter before the kernel is connected only moves to the next cell: wait for the
    // status bar's "Rust (fastai) | Idle".
    await page.waitForFunction(() => {
      const bar = document.querySelector('#jp-main-statusbar');
      return bar && /Rust \(fastai\)\s*\|\s*Idle/.test(bar.textContent);
    }, null, { timeout: left() });
    milestone('kernel idle');

    // Run the cell as a user does.
    await page.click('.jp-Notebook .jp-CodeCell .cm-content');
    await page.keyboard.press('Shift+Enter');
    const t0 = Date.now();
    milestone('cell submitted (Shift+Enter)');

    // Watch the outputs while it runs; screenshot once the bar is partly done.
    let midShot = false;
    let last = '';
    let seenRunning = false; // (an old prompt "[1]:" may still show right after Shift+Enter)
    for (;;) {
      const s = await page.evaluate(outputState);
      const key = JSON.stringify(s);
      s.t = (Date.now() - t0) / 1000;
      if (key !== last) {
        summary.samples.push(s); // only changes
        milestone(`prompt ${s.prompt} displays ${s.displays} bar ${JSON.stringify(s.bars)} rows ${s.tables.map((t) => t.rows.length)}`);
      }
      last = key;
      const running = s.prompt.includes('*');
      seenRunning = seenRunning || running;
      const b = s.bars[0];
      if (!midShot && running && b && b.value > 0 && b.value < b.max) {
        const file = path.join(opts.out, 'jupyterlab-progress-running.png');
        await page.screenshot({ path: file });
        summary.screenshots.push(file);
        midShot = true;
      }
      if (seenRunning && !running && /\[\d+\]/.test(s.prompt)) break;
      if (!seenRunning && s.t > 20) throw new Error(`the cell did not start running; state ${JSON.stringify(s)}`);
      if (Date.now() > deadline) throw new Error(`the cell did not finish in ${opts.timeout} s; last state ${JSON.stringify(s)}`);
      await page.waitForTimeout(150);
    }
    // Let the last update render, then the final picture.
    await page.waitForTimeout(500);
    summary.final = await page.evaluate(outputState);
    summary.seconds = (Date.now() - t0) / 1000;
    const file = path.join(opts.out, 'jupyterlab-progress.png');
    await page.screenshot({ path: file });
    summary.screenshots.push(file);
  } catch (e) {
    // What the page looked like when it went wrong.
    const file = path.join(opts.out, 'jupyterlab-failure.png');
    await page.screenshot({ path: file }).catch(() => {});
    e.message += ` (screenshot: ${file})`;
    throw e;
  } finally {
    await close();
  }
  process.stdout.write(JSON.stringify(summary) + '\n');
}

runMain('run_cell.js', main);
