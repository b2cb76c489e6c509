/// <reference lib="dom" />
/**
 * The status page in a real browser (headless Debian Chromium through playwright-core) on a
 * running `dustgate demo`, in Chinese (the demo's language) and English, on a 360 px phone: values
 * update; frost set through the simulator's control API shows as the regulation's sentence with
 * 3.5 and 4. Screenshots of both go to test-output/.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { JUNE_10AM, ROOT, startInProcess, tempDir } from '../helpers/gateway-rig.js';
import { freePort, requireTool, waitFor } from '../helpers/system.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

describe('status page in Chromium', () => {
  it('the demo page in Chinese and in English at 360×780: values update; at 3.5 ℃ the frost sentence with 3.5 and 4; screenshots of both', async () => {
    requireTool(CHROMIUM, ['--version']);
    const [httpPort, mqttPort, controlPort] = [await freePort(), await freePort(), await freePort()];
    const demo = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), 'demo', '--http-port', String(httpPort), '--mqtt-port', String(mqttPort), '--control', `127.0.0.1:${controlPort}`, '--data', tempDir('page')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    demo.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    demo.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    try {
      await waitFor(() => out.includes(`http://127.0.0.1:${httpPort}/`), 30_000, 100);
      // PM10 well over the alarm, whatever the hour (the demo's dust follows the clock): the sprinkler is asked for, so frost has something to stop
      const put = (temperature: number) => fetch(`http://127.0.0.1:${controlPort}/devices/head/values`, { method: 'PUT', body: JSON.stringify({ temperature, pm10: 400 }) });
      // The demo's temperature follows the clock (2.5 °C at night): warm first, so the frost below is a change the page shows
      expect((await put(12)).ok).toBe(true);
      const zh = await browser.newPage({ viewport: { width: 360, height: 780 } });
      const en = await browser.newPage({ viewport: { width: 360, height: 780 } });
      await zh.goto(`http://127.0.0.1:${httpPort}/`); // the demo's language: zh-CN (preset henan-2017)
      await en.goto(`http://127.0.0.1:${httpPort}/?lang=en`);
      for (const page of [zh, en]) {
        await page.waitForFunction(() => document.querySelectorAll('#values .tile').length >= 5, undefined, { timeout: 15_000 });
        const first = await page.textContent('#links');
        await page.waitForFunction((t) => document.querySelector('#links')!.textContent !== t, first, { timeout: 10_000 });
        // nothing wider than the phone: the page scrolls only down
        expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
      }
      expect(await zh.getAttribute('html', 'lang')).toBe('zh-CN');
      expect(await zh.textContent('header h1')).toContain('扬尘网关');
      expect(await zh.textContent('#values')).toMatch(/温度.*湿度|湿度.*温度/s);
      expect(await zh.textContent('#values')).toContain('℃');
      expect(await zh.textContent('#devices')).toMatch(/head\s*在线/);
      expect(await en.textContent('#devices')).toMatch(/head\s*online/);
      expect(await en.textContent('#values')).toMatch(/Temperature/);
      expect(await zh.textContent('#earthwork .why')).toMatch(/封土期|不在封土期/);
      // values update: the temperature tile follows the simulator
      expect((await put(12.3)).ok).toBe(true);
      for (const page of [zh, en]) await page.waitForFunction(() => document.querySelector('#values [data-metric="temperature"] b')!.textContent === '12.3', undefined, { timeout: 15_000 });
      // frost, through the simulator's control API
      expect((await put(3.5)).ok).toBe(true);
      await zh.waitForFunction(() => document.querySelector('#sprinkling .why')!.textContent === '气温 3.5 ℃ 低于 4 ℃，停止洒水', undefined, { timeout: 15_000 });
      expect(await zh.textContent('#sprinkling b')).toBe('停止');
      expect(await zh.getAttribute('#sprinkling', 'class')).toContain('bad');
      await en.waitForFunction(() => document.querySelector('#sprinkling .why')!.textContent === 'Temperature 3.5 °C is below 4 °C: no sprinkling', undefined, { timeout: 15_000 });
      expect(await en.textContent('#sprinkling b')).toBe('blocked');
      // the event that stopped it, as the site reads it
      await zh.waitForFunction(() => document.querySelector('#events')!.textContent!.includes('低于 4 ℃'), undefined, { timeout: 10_000 });
      const dir = path.join(ROOT, 'test-output');
      mkdirSync(dir, { recursive: true });
      const { statSync } = await import('node:fs');
      for (const [page, name] of [[zh, 'status-page-zh-CN-frost.png'], [en, 'status-page-en-frost.png']] as const) {
        const shot = path.join(dir, name);
        await page.screenshot({ path: shot, fullPage: true });
        expect(statSync(shot).size).toBeGreaterThan(10_000);
      }
    } finally {
      await browser.close();
      demo.kill('SIGINT');
      await new Promise((r) => demo.once('exit', r));
    }
  });

  it('shows what the Arduino\'s status light shows: steady, then slow blink while the head is offline', async () => {
    requireTool(CHROMIUM, ['--version']);
    const r = await startInProcess('dust-event', { io: 'firmata', factor: 1, startMs: JUNE_10AM });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    try {
      await waitFor(() => r.gw.devices.get('board')!.status === 'online', 5000);
      const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
      await page.goto(`http://127.0.0.1:${r.gw.http!.port}/`);
      const light = () => page.evaluate(() => Array.from(document.querySelectorAll('#buffer tr')).find((tr) => tr.firstElementChild?.textContent === '状态灯')?.lastElementChild?.textContent ?? null);
      await page.waitForFunction(() => document.querySelector('#buffer')!.textContent!.includes('状态灯'), undefined, { timeout: 10_000 });
      expect(await light()).toBe('常亮');
      r.sim.setFaults('head', ['timeout']);
      await page.waitForFunction(() => document.querySelector('#devices')!.textContent!.includes('离线'), undefined, { timeout: 15_000 });
      await page.waitForFunction(() => Array.from(document.querySelectorAll('#buffer td')).some((td) => td.textContent === '慢闪'), undefined, { timeout: 5000 });
      expect(await light()).toBe('慢闪');
    } finally {
      await browser.close();
      await r.stop();
    }
  });
});
