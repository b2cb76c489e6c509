/// <reference lib="dom" />
/**
 * The status page in a real browser (headless Debian Chromium through playwright-core) on a
 * running `dustgate demo`: values update; frost set through the simulator's control API shows as
 * sprinkling blocked with its reason. A screenshot goes to test-output/.
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
  it('shows live values, then sprinkling blocked when the simulator turns cold; phone-sized screenshot written', async () => {
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
      const page = await browser.newPage({ viewport: { width: 390, height: 844 } }); // a phone
      await page.goto(`http://127.0.0.1:${httpPort}/`);
      await page.waitForFunction(() => document.querySelectorAll('#values .tile').length >= 5, undefined, { timeout: 15_000 });
      const first = await page.textContent('#links');
      await page.waitForFunction((t) => document.querySelector('#links')!.textContent !== t, first, { timeout: 10_000 });
      expect(await page.textContent('#devices')).toMatch(/head\s*online/);
      // The demo's temperature follows the clock (2.5 °C at night), so make it warm first: the
      // frost below must be a change the page shows, whatever the time of the run.
      const put = (temperature: number) => fetch(`http://127.0.0.1:${controlPort}/devices/head/values`, { method: 'PUT', body: JSON.stringify({ temperature }) });
      expect((await put(12)).ok).toBe(true);
      await page.waitForFunction(() => document.querySelector('#sprinkling b')!.textContent !== 'blocked', undefined, { timeout: 15_000 });
      // frost, through the simulator's control API
      expect((await put(3.5)).ok).toBe(true);
      await page.waitForFunction(() => document.querySelector('#sprinkling b')!.textContent === 'blocked', undefined, { timeout: 15_000 });
      expect(await page.textContent('#sprinkling .why')).toMatch(/temperature_below_min \(3\.5 °C\)/);
      expect(await page.getAttribute('#sprinkling', 'class')).toContain('bad');
      const dir = path.join(ROOT, 'test-output');
      mkdirSync(dir, { recursive: true });
      const shot = path.join(dir, 'status-page-frost.png');
      await page.screenshot({ path: shot, fullPage: true });
      const { statSync } = await import('node:fs');
      expect(statSync(shot).size).toBeGreaterThan(10_000);
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
      const light = () => page.evaluate(() => Array.from(document.querySelectorAll('#buffer tr')).find((tr) => tr.firstElementChild?.textContent === 'status light')?.lastElementChild?.textContent ?? null);
      await page.waitForFunction(() => document.querySelector('#buffer')!.textContent!.includes('status light'), undefined, { timeout: 10_000 });
      expect(await light()).toBe('steady');
      r.sim.setFaults('head', ['timeout']);
      await page.waitForFunction(() => document.querySelector('#devices')!.textContent!.includes('offline'), undefined, { timeout: 15_000 });
      await page.waitForFunction(() => Array.from(document.querySelectorAll('#buffer td')).some((td) => td.textContent === 'slow blink'), undefined, { timeout: 5000 });
      expect(await light()).toBe('slow blink');
    } finally {
      await browser.close();
      await r.stop();
    }
  });
});
