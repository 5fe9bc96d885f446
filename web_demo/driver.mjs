// Drives the demo page in headless Chromium for web_demo/browser.py (tests and benchmark):
// one JSON command per stdin line, one JSON reply per stdout line.
//   {"do": "open", "page": "st", "url": "http://127.0.0.1:PORT/?threads=1"}
//   {"do": "classify", "page": "st", "model": 0, "image": "/path/picture.png"}
//   {"do": "time", "page": "st", "runs": 20}      -> milliseconds of each run on the last picture
//   {"do": "screenshot", "page": "st", "path": "/path/shot.png"}
//   {"do": "close"}
import {createInterface} from 'node:readline';

import puppeteer from 'puppeteer-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/lib/chromium/chromium';
const TIMEOUT_MS = 120000;

const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--no-first-run',
    // Pages in the background keep their full speed (a benchmark alternates between them).
    '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows'],
});
const pages = new Map();

/** The page `id`, brought to the front: headless Chromium does not paint background tabs. */
async function front(id) {
  const page = pages.get(id);
  await page.bringToFront();
  return page;
}

async function waitForResult(page) {
  await page.waitForFunction(
      () => globalThis.demo?.lastResult || document.body.dataset.state === 'error',
      {timeout: TIMEOUT_MS, polling: 50});
  return page.evaluate(() => (document.body.dataset.state === 'error' ?
    {error: document.getElementById('status').textContent} : globalThis.demo.lastResult));
}

const commands = {
  async open({page: id, url}) {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    await page.setViewport({width: 760, height: 760});
    await page.goto(url, {waitUntil: 'load', timeout: TIMEOUT_MS});
    await page.waitForFunction(() => globalThis.demo !== undefined, {timeout: TIMEOUT_MS});
    await page.evaluate(() => globalThis.demo.ready);
    pages.set(id, page);
    return page.evaluate((pageErrors) => ({
      isolated: globalThis.crossOriginIsolated,
      threads: globalThis.demo.classifier?.threads,
      status: document.getElementById('status').textContent,
      models: Array.from(document.getElementById('model').options, (o) => o.entry.name),
      errors: pageErrors,
    }), errors);
  },
  async classify({page: id, model, image}) {
    const page = await front(id);
    await page.evaluate(async (index) => {
      globalThis.demo.picture = null;
      await globalThis.demo.selectModel(index);
      globalThis.demo.lastResult = null;
      document.getElementById('file').value = '';  // the same file again must fire 'change'
    }, model);
    const input = await page.$('#file');
    await input.uploadFile(image);
    return waitForResult(page);
  },
  async time({page: id, runs}) {
    return (await front(id)).evaluate(async (count) => {
      const {classifier, picture} = globalThis.demo;
      const canvas = document.getElementById('picture');
      const {data} = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      const tensor = classifier.inputTensor(data, canvas.width, canvas.height);
      const times = [];
      for (let i = 0; i < count; i++) times.push((await classifier.run(tensor)).milliseconds);
      tensor.delete();
      return times;
    }, runs);
  },
  async screenshot({page: id, path}) {
    const page = await front(id);
    await page.screenshot({path, fullPage: true});
    return {path};
  },
  async close() {
    await browser.close();
    return {closed: true};
  },
};

for await (const line of createInterface({input: process.stdin})) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  let reply;
  try {
    reply = {ok: true, value: await commands[command.do](command)};
  } catch (error) {
    reply = {ok: false, error: String(error.stack || error)};
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
  if (command.do === 'close') break;
}
process.exit(0);
