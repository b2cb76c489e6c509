/**
 * HJ 212-2017 packets: `##` + 4-digit byte length of the data segment + data segment + CRC (HJ 212
 * Appendix A, uppercase hex) + CRLF. The data segment is `QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;[PNUM=…;PNO=…;]CP=&&…&&`;
 * inside CP, `;` separates groups, `,` separates items of a group, `=` separates key and value.
 */

export type Hj212ErrorCode = 'bad_header' | 'bad_length' | 'bad_crc' | 'truncated' | 'non_ascii' | 'bad_field' | 'too_long';

export class Hj212Error extends Error {
  override readonly name = 'Hj212Error';
  constructor(
    readonly code: Hj212ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** HJ 212 Appendix A CRC-16 over the data segment bytes (not CRC-16/MODBUS). */
export function hj212Crc(data: Buffer | string): number {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let crc = 0xffff;
  for (const b of buf) {
    crc = (crc >> 8) ^ b;
    for (let i = 0; i < 8; i++) {
      const lsb = crc & 1;
      crc >>= 1;
      if (lsb) crc ^= 0xa001;
    }
  }
  return crc;
}

export const crcHex = (data: Buffer | string): string => hj212Crc(data).toString(16).toUpperCase().padStart(4, '0');

/** One CP group: ordered key/value items (`a34004-Rtd=35,a34004-Flag=N`). */
export type CpGroup = [string, string][];

export interface Hj212Packet {
  /** Header fields in order (QN, ST, CN, PW, MN, Flag, PNUM, PNO …), without CP. */
  fields: [string, string][];
  cp: CpGroup[];
}

export const field = (p: Hj212Packet, key: string): string | undefined => p.fields.find(([k]) => k === key)?.[1];

/** Value of `key` anywhere in CP. */
export function cpValue(p: Hj212Packet, key: string): string | undefined {
  for (const g of p.cp) for (const [k, v] of g) if (k === key) return v;
  return undefined;
}

export function encodeCp(cp: CpGroup[]): string {
  return cp.map((g) => g.map(([k, v]) => `${k}=${v}`).join(',')).join(';');
}

/** The data segment text. */
export function dataSegment(p: Hj212Packet): string {
  return `${p.fields.map(([k, v]) => `${k}=${v}`).join(';')};CP=&&${encodeCp(p.cp)}&&`;
}

/** A whole packet as text, with length and CRC. */
export function encodePacket(p: Hj212Packet): string {
  const data = dataSegment(p);
  const len = Buffer.byteLength(data, 'utf8');
  if (len > 9999) throw new Hj212Error('too_long', `data segment of ${len} bytes does not fit the 4-digit length`);
  return `##${String(len).padStart(4, '0')}${data}${crcHex(data)}\r\n`;
}

function parseCp(text: string): CpGroup[] {
  if (text === '') return [];
  return text.split(';').map((g, gi) =>
    g.split(',').map((item, ii) => {
      const eq = item.indexOf('=');
      if (eq <= 0) throw new Hj212Error('bad_field', `CP group ${gi + 1}, item ${ii + 1}: expected KEY=VALUE, got "${item}"`);
      return [item.slice(0, eq), item.slice(eq + 1)] as [string, string];
    }),
  );
}

/** Parse one packet (text or bytes, with or without the trailing CRLF). */
export function decodePacket(input: Buffer | string): Hj212Packet {
  const buf = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  if (buf.length < 2 || buf[0] !== 0x23 || buf[1] !== 0x23) throw new Hj212Error('bad_header', 'a packet starts with ##');
  if (buf.length < 6) throw new Hj212Error('truncated', `only ${buf.length} bytes: no length`);
  const lenText = buf.subarray(2, 6).toString('latin1');
  if (!/^\d{4}$/.test(lenText)) throw new Hj212Error('bad_length', `expected a 4-digit length, got "${lenText}"`);
  const len = Number(lenText);
  let end = buf.length;
  if (buf[end - 1] === 0x0a && buf[end - 2] === 0x0d) end -= 2;
  if (end < 6 + len + 4) throw new Hj212Error('truncated', `the length says ${len} bytes of data and a CRC, but only ${Math.max(0, end - 6)} bytes follow`);
  if (end > 6 + len + 4) throw new Hj212Error('bad_length', `the length says ${len} bytes of data, but ${end - 10} bytes stand before the CRC`);
  const data = buf.subarray(6, 6 + len);
  const crcText = buf.subarray(6 + len, 10 + len).toString('latin1');
  if (!/^[0-9A-Fa-f]{4}$/.test(crcText)) throw new Hj212Error('bad_crc', `expected a 4-digit hex CRC, got "${crcText}"`);
  const want = crcHex(data);
  if (crcText.toUpperCase() !== want) throw new Hj212Error('bad_crc', `CRC ${crcText} does not match the data (${want})`);
  const text = data.toString('utf8');
  const cpAt = text.indexOf('CP=&&');
  if (cpAt < 0 || !text.endsWith('&&') || text.length < cpAt + 7) throw new Hj212Error('bad_field', 'no CP=&&…&& at the end of the data segment');
  const cpText = text.slice(cpAt + 5, text.length - 2);
  for (let i = 0; i < cpText.length; i++)
    if (cpText.charCodeAt(i) > 0x7e || cpText.charCodeAt(i) < 0x20) throw new Hj212Error('non_ascii', `CP holds a byte that is not printable ASCII at position ${i + 1}`);
  const head = text.slice(0, cpAt);
  const fields: [string, string][] = head
    .split(';')
    .filter((s) => s !== '')
    .map((f) => {
      const eq = f.indexOf('=');
      if (eq <= 0) throw new Hj212Error('bad_field', `expected KEY=VALUE, got "${f}"`);
      return [f.slice(0, eq), f.slice(eq + 1)] as [string, string];
    });
  return { fields, cp: parseCp(cpText) };
}

/** Split a byte stream into packets: returns the complete ones and what is left over. */
export function splitStream(buf: Buffer): { packets: Buffer[]; rest: Buffer } {
  const packets: Buffer[] = [];
  let at = 0;
  for (;;) {
    const start = buf.indexOf('##', at);
    if (start < 0) return { packets, rest: Buffer.alloc(0) };
    const end = buf.indexOf('\r\n', start);
    if (end < 0) return { packets, rest: buf.subarray(start) };
    packets.push(buf.subarray(start, end + 2));
    at = end + 2;
  }
}

/** `YYYYMMDDhhmmss` (and `…zzz` for QN) of a time in a zone. */
const hjFormats = new Map<string, Intl.DateTimeFormat>();
export function hjTime(ms: number, timeZone: string, withMs = false): string {
  let f = hjFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    hjFormats.set(timeZone, f);
  }
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(ms)) p[part.type] = part.value;
  const t = `${p.year}${p.month}${p.day}${p.hour}${p.minute}${p.second}`;
  return withMs ? `${t}${String(ms % 1000).padStart(3, '0')}` : t;
}

/** Flag: bit 2 = version 2017, bit 0 = ack wanted, bit 1 = split packet (PNUM/PNO). */
export const flagOf = (o: { ack: boolean; split?: boolean }) => 4 | (o.ack ? 1 : 0) | (o.split ? 2 : 0);

/**
 * Packets for one upload. CP groups are packed in order; when they do not fit `maxData` bytes of data
 * segment in one packet, they are spread over several with PNUM (total) and PNO (1-based).
 */
export function buildPackets(
  head: { qn: string; st: string | number; cn: string | number; pw: string; mn: string; ack: boolean },
  groups: CpGroup[],
  maxData = 1024,
): string[] {
  const base = (extra: [string, string][], flagSplit: boolean): [string, string][] => [
    ['QN', head.qn],
    ['ST', String(head.st)],
    ['CN', String(head.cn)],
    ['PW', head.pw],
    ['MN', head.mn],
    ['Flag', String(flagOf({ ack: head.ack, split: flagSplit }))],
    ...extra,
  ];
  const whole: Hj212Packet = { fields: base([], false), cp: groups };
  if (Buffer.byteLength(dataSegment(whole)) <= maxData) return [encodePacket(whole)];
  // the first group (DataTime) goes in every part
  const [first, ...rest] = groups;
  const lead = first && first.some(([k]) => k === 'DataTime') ? [first] : [];
  const body = lead.length ? rest : groups;
  const parts: CpGroup[][] = [];
  let cur: CpGroup[] = [];
  const fits = (cp: CpGroup[]) => Buffer.byteLength(dataSegment({ fields: base([['PNUM', '9999'], ['PNO', '9999']], true), cp: [...lead, ...cp] })) <= maxData;
  for (const g of body) {
    if (cur.length && !fits([...cur, g])) {
      parts.push(cur);
      cur = [];
    }
    if (!fits([g])) throw new Hj212Error('too_long', `one CP group does not fit ${maxData} bytes`);
    cur.push(g);
  }
  if (cur.length) parts.push(cur);
  return parts.map((cp, i) => encodePacket({ fields: base([['PNUM', String(parts.length)], ['PNO', String(i + 1)]], true), cp: [...lead, ...cp] }));
}
