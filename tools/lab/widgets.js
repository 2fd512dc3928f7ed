#!/usr/bin/env node
// Drives widgets in JupyterLab in headless Chromium, as a user does: runs the cells of a notebook
// one by one and acts on the widgets they show (tests/test_jupyterlab_widgets.py writes the
// notebook and checks the results):
//   cell 1: a Button and a Label - click the button, wait for the label to say "clicked 1";
//   cell 2: the image cleaner - Delete on the first image, another class for the second, Save;
//   cell 3: a training cell - click its Stop button while it runs, wait for the cell to end.
//
//   node tools/lab/widgets.js --url URL --token TOKEN --notebook widgets.ipynb --out DIR [--timeout S]
//
// Prints one JSON line with what happened; exits 1 with a message when something does not.
'use strict';

const fs = require('fs');
const path = require('path');
const { parseArgs, milestone, openBrowser, runMain } = require('./lab');

async function main() {
  const opts = parseArgs(process.argv.slice(2), 'widgets.js', 900);
  fs.mkdirSync(opts.out, { recursive: true });
  const deadline = Date.now() + opts.timeout * 1000;
  const left = () => Math.max(1000, deadline - Date.now());
  const { page, close } = await openBrowser({ width: 1280, height: 1000 });
  const summary = { screenshots: [] };
  const cell = (i) => page.locator('.jp-Notebook .jp-CodeCell').nth(i);
  const shot = async (name) => {
    const file = path.join(opts.out, name);
    await page.screenshot({ path: file });
    summary.screenshots.push(file);
  };
  const prompt = (i) => cell(i).locator('.jp-InputArea-prompt').textContent();
  const run = async (i) => {
    await cell(i).locator('.cm-content').click();
    await page.keyboard.press('Shift+Enter');
    milestone(`cell ${i + 1} submitted`);
  };
  const finished = async (i) => {
    for (;;) {
      const p = (await prompt(i)).trim();
      if (/\[\d+\]/.test(p)) return;
      if (Date.now() > deadline) throw new Error(`cell ${i + 1} did not finish; prompt ${p}`);
      await page.waitForTimeout(200);
    }
  };
  const outputText = async (i) => (await cell(i).locator('.jp-OutputArea').textContent()) || '';
  try {
    page.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
    await page.goto(`${opts.url}/lab/tree/${encodeURIComponent(opts.notebook)}?token=${opts.token}`, { timeout: left() });
    await page.waitForSelector('.jp-NotebookPanel .jp-CodeCell .cm-content', { timeout: left() });
    await page.waitForFunction(() => {
      const bar = document.querySelector('#jp-main-statusbar');
      return bar && /Rust \(fastai\)\s*\|\s*Idle/.test(bar.textContent);
    }, null, { timeout: left() });
    milestone('kernel idle');

    // 1. a button and a label
    await run(0);
    await finished(0);
    const button = cell(0).locator('button.widget-button', { hasText: 'Click me' });
    await button.waitFor({ timeout: 60000 });
    await button.click();
    await cell(0).locator('.widget-label', { hasText: 'clicked 1' }).waitFor({ timeout: 30000 });
    summary.clicked = true;
    milestone('button click reached the kernel and came back');
    await shot('jupyterlab-widgets-button.png');

    // 2. the image cleaner
    await run(1);
    await finished(1);
    const toggles = cell(1).locator('button.widget-toggle-button', { hasText: 'Delete' });
    await toggles.first().waitFor({ timeout: 60000 });
    summary.tiles = await toggles.count();
    summary.images = await cell(1).locator('.widget-image').count();
    await toggles.first().click();
    const select = cell(1).locator('.widget-dropdown select').nth(1);
    const options = await select.locator('option').allTextContents();
    const current = await select.inputValue();
    const currentLabel = await select.locator(`option[value="${current}"]`).textContent().catch(() => null);
    const other = options.find((o) => o !== (currentLabel || '').trim());
    await select.selectOption({ label: other });
    summary.relabelledTo = other;
    await page.waitForTimeout(500);
    await cell(1).locator('button.widget-button', { hasText: 'Save' }).click();
    await cell(1).locator('.widget-label', { hasText: 'saved' }).waitFor({ timeout: 30000 });
    summary.saveStatus = (await cell(1).locator('.widget-label', { hasText: 'saved' }).textContent()).trim();
    milestone(`cleaner saved: ${summary.saveStatus}`);
    await shot('jupyterlab-image-cleaner.png');

    // 3. the Stop button beside training
    await run(2);
    const stop = cell(2).locator('button.widget-button', { hasText: 'Stop' });
    await stop.waitFor({ timeout: left() });
    await page.waitForTimeout(2000);
    await shot('jupyterlab-stop-button.png');
    const t0 = Date.now();
    await stop.click();
    await finished(2);
    summary.stopSeconds = (Date.now() - t0) / 1000;
    // the prompt's number comes with execute_reply on the shell channel; the cell's last
    // output (the stop message) comes on iopub and may be drawn a moment later
    const settle = Date.now() + 10000;
    summary.trainingOutput = await outputText(2);
    while (!summary.trainingOutput.includes('interrupted at epoch') && Date.now() < settle) {
      await page.waitForTimeout(200);
      summary.trainingOutput = await outputText(2);
    }
    milestone(`training ended ${summary.stopSeconds} s after the click`);
    await page.waitForTimeout(500);
    await shot('jupyterlab-stopped.png');
  } catch (e) {
    const file = path.join(opts.out, 'jupyterlab-widgets-failure.png');
    await page.screenshot({ path: file }).catch(() => {});
    e.message += ` (screenshot: ${file})`;
    throw e;
  } finally {
    await close();
  }
  process.stdout.write(JSON.stringify(summary) + '\n');
}

runMain('widgets.js', main);
