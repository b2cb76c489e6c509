/**
 * The status page on the site's network, for a phone: the box's LAN addresses, the page's URLs
 * (with the token), a QR code of the URL for the terminal, and the config change that opens the
 * page to the LAN with a generated token (written into the site file, comments kept).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseDocument } from 'yaml';
import { resolveConfig } from './config/load.js';
import type { Config } from './config/schema.js';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);
const ANY = new Set(['0.0.0.0', '::']);

/** This box's IPv4 addresses a phone on the same network can reach (no loopback, no link-local). */
export function lanAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .filter((a): a is os.NetworkInterfaceInfo => !!a && a.family === 'IPv4' && !a.internal && !a.address.startsWith('169.254.'))
    .map((a) => a.address);
}

export interface PageLink {
  /** the page is reachable from other machines (bound to the LAN) */
  lan: boolean;
  /** URLs a browser opens (with the token when one is set); empty when bound to every interface and the box has no LAN address */
  urls: string[];
}

/** Where the page of `http` can be opened. */
export function pageLinks(http: Config['http'], addresses = lanAddresses()): PageLink {
  const q = http.token ? `?token=${encodeURIComponent(http.token)}` : '';
  const url = (host: string) => `http://${host.includes(':') ? `[${host}]` : host}:${http.port}/${q}`;
  if (LOOPBACK.has(http.bind)) return { lan: false, urls: [url('127.0.0.1')] };
  if (ANY.has(http.bind)) return { lan: true, urls: addresses.map(url) };
  return { lan: true, urls: [url(http.bind)] };
}

/** A QR code of `text` drawn with half blocks, for a terminal (scan it with a phone). */
export async function qrText(text: string): Promise<string> {
  const QRCode = (await import('qrcode')).default;
  return QRCode.toString(text, { type: 'terminal', small: true, errorCorrectionLevel: 'M' });
}

/** A token for the page: 24 random bytes, URL-safe. */
export const newToken = (): string => randomBytes(24).toString('base64url');

/**
 * Open the page of the site config `file` to the LAN: http.bind (default 0.0.0.0), http.port if
 * given, and a token (kept if one is set, unless `rotate`). The file is changed only when something
 * changes, checked first (a config the gateway would refuse is never written), and replaced
 * atomically; YAML comments stay.
 */
export function enableLan(file: string, o: { bind?: string; port?: number; rotate?: boolean } = {}): { changed: boolean; http: Config['http'] } {
  const text = readFileSync(file, 'utf8');
  const json = /\.json$/i.test(file);
  const doc = json ? undefined : parseDocument(text);
  const raw = (json ? JSON.parse(text) : doc!.toJS()) as Record<string, any>;
  const before = resolveConfig(raw, file).config.http;
  const http = { ...before, bind: o.bind ?? (LOOPBACK.has(before.bind) ? '0.0.0.0' : before.bind), port: o.port ?? before.port, token: before.token && !o.rotate ? before.token : newToken() };
  if (http.bind === before.bind && http.port === before.port && http.token === before.token) return { changed: false, http: before };
  const next = { ...raw, http: { ...(raw.http ?? {}), bind: http.bind, port: http.port, token: http.token } };
  resolveConfig(next, file); // throws a ConfigError naming the path if the result would not load
  let out: string;
  if (doc) {
    for (const k of ['bind', 'port', 'token'] as const) doc.setIn(['http', k], http[k]);
    out = doc.toString();
  } else out = `${JSON.stringify(next, null, 2)}\n`;
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, out, { mode: statSync(file).mode & 0o777 });
  renameSync(tmp, file);
  return { changed: true, http };
}
