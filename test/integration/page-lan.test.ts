/**
 * The page on the site's network, for a phone: `dustgate page --lan` binds it to the LAN with a
 * generated token and prints the URL and a QR code (decoded here by jsQR, a decoder nobody here
 * wrote); the gateway then serves it to a client on this machine's non-loopback address with the
 * token, and refuses it (401) without. The doctor prints the same URL and code, in Chinese or English.
 */
import http from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import jsQR from 'jsqr';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { lanAddresses } from '../../gateway/lan.js';
import { ROOT, spawnGateway, tempDir } from '../helpers/gateway-rig.js';
import { freePort, runCommand, waitFor } from '../helpers/system.js';

const dustgate = (args: string[], env: Record<string, string> = {}) =>
  runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), ...args], { cwd: ROOT, timeoutMs: 30_000, env: { ...process.env, ...env } });

const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
  stops.length = 0;
});

/** The QR code as printed (half blocks, dark on a light background), read back by jsQR. */
function decodeQr(out: string): string | undefined {
  const rows = out
    .split('\n')
    // the code's rows: dark on light; the bottom border row is drawn light-on-default (ESC[37m) and is not part of it
    .filter((l) => l.includes('\x1b[47m\x1b[30m') && !l.includes('\x1b[37m') && /[▀▄█]/.test(l))
    .map((l) => l.replace(/\x1b\[[0-9;]*m/g, ''));
  if (!rows.length) return undefined;
  const bits: boolean[][] = [];
  for (const r of rows) {
    const chars = [...r];
    bits.push(chars.map((c) => c === '▀' || c === '█'));
    bits.push(chars.map((c) => c === '▄' || c === '█'));
  }
  const quiet = 4;
  const scale = 6;
  const h = bits.length + 2 * quiet;
  const w = Math.max(...bits.map((b) => b.length)) + 2 * quiet;
  const data = new Uint8ClampedArray(w * scale * h * scale * 4).fill(255);
  for (let y = 0; y < bits.length; y++)
    for (let x = 0; x < bits[y]!.length; x++) {
      if (!bits[y]![x]) continue;
      for (let dy = 0; dy < scale; dy++)
        for (let dx = 0; dx < scale; dx++) {
          const i = (((y + quiet) * scale + dy) * w * scale + (x + quiet) * scale + dx) * 4;
          data[i] = data[i + 1] = data[i + 2] = 0;
        }
    }
  return jsQR(data, w * scale, h * scale)?.data;
}

/** GET from this machine's LAN address (the connection's source is not loopback). */
function get(url: string, from: string): Promise<{ status: number; body: string; remote: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { localAddress: from }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, remote: req.socket?.localAddress ?? '' }));
    });
    req.on('error', reject);
  });
}

describe('the page from a phone on the LAN', () => {
  it('page --lan writes a bind and a token, prints the URL and a QR of it; the gateway serves it on the LAN with the token, 401 without; the doctor says the same', async () => {
    const lan = lanAddresses()[0];
    if (!lan) throw new Error('this machine has no non-loopback IPv4 address: the LAN page test needs one (a network interface besides lo)');
    const dir = tempDir('page-lan');
    const file = path.join(dir, 'site.yaml');
    const port = await freePort();
    writeFileSync(file, `# a site with nothing on its lines yet\ngateway: { id: lan-site-0001 }\nmqtt: { enabled: false }\nstorage: { path: ${path.join(dir, 'buffer.db')} }\nhttp: { port: ${port} }  # the installer's page\n`);

    const r = await dustgate(['page', '--lan', '--config', file]);
    expect(r.code, r.stderr).toBe(0);
    const url = /Status page: (http:\/\/\S+)/.exec(r.stdout)?.[1];
    expect(url).toBeDefined();
    const u = new URL(url!);
    expect(u.hostname).toBe(lan);
    expect(u.port).toBe(String(port));
    const token = u.searchParams.get('token')!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(decodeQr(r.stdout)).toBe(url);
    // written into the file, its comments kept
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('# a site with nothing on its lines yet');
    expect(parse(text).http).toEqual({ port, bind: '0.0.0.0', token });
    // run again: the token stays (a printed QR keeps working)
    const again = await dustgate(['page', '--lan', '--config', file]);
    expect(again.stdout).toContain(url!);
    expect(again.stdout).toMatch(/already on the LAN with a token; nothing changed/);

    const gw = spawnGateway(file);
    stops.push(async () => {
      gw.proc.kill('SIGTERM');
      await gw.exited;
    });
    await waitFor(() => get(url!, lan).then((x) => x.status === 200).catch(() => false), 20_000, 200);
    const ok = await get(url!, lan);
    expect(ok.remote).toBe(lan);
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('<html lang="zh-CN">'); // the preset's language
    expect(ok.body).toContain('扬尘网关');
    const state = await get(`http://${lan}:${port}/api/state?token=${token}&lang=en`, lan);
    expect(JSON.parse(state.body).locale).toBe('en');
    const without = await get(`http://${lan}:${port}/`, lan);
    expect(without.status).toBe(401);
    const wrong = await get(`http://${lan}:${port}/?token=${token.slice(1)}x`, lan);
    expect(wrong.status).toBe(401);

    // the doctor prints the page's URL and its QR, in the installer's language
    const zh = await dustgate(['doctor', '--config', file, '--timeout', '500'], { LANG: 'zh_CN.UTF-8' });
    expect(zh.stdout).toMatch(new RegExp(`^正常\\s+页面\\s+${url!.replace(/[?.]/g, '\\$&')}：用工地网络中的手机打开`, 'm'));
    expect(decodeQr(zh.stdout)).toBe(url);
    const en = await dustgate(['doctor', '--config', file, '--timeout', '500'], { LANG: 'C' });
    expect(en.stdout).toMatch(new RegExp(`^ok\\s+page\\s+${url!.replace(/[?.]/g, '\\$&')}: open it on a phone`, 'm'));
  });

  it('on loopback the page and the doctor say how to open it to the LAN; --bind without --lan is refused', async () => {
    const dir = tempDir('page-local');
    const file = path.join(dir, 'site.yaml');
    writeFileSync(file, `gateway: { id: lan-site-0002 }\nmqtt: { enabled: false }\nstorage: { path: ${path.join(dir, 'buffer.db')} }\n`);
    const r = await dustgate(['page', '--config', file], { LANG: 'zh_CN.UTF-8' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('状态页：http://127.0.0.1:8080/');
    expect(r.stdout).toContain(`只能在本机打开（http://127.0.0.1:8080/）：运行 \`dustgate page --lan --config ${file}\``);
    const bad = await dustgate(['page', '--bind', '0.0.0.0', '--config', file]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });
});
