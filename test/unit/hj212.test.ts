/** HJ 212 codec against test/fixtures/vectors.json, and AQI per HJ 633 at and around every breakpoint. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { aqi, iaqi } from '../../gateway/aqi.js';
import { Hj212Error, buildPackets, crcHex, cpValue, decodePacket, encodePacket, field, hjTime, splitStream } from '../../gateway/hj212/codec.js';

const vectors = JSON.parse(readFileSync(path.resolve(__dirname, '../fixtures/vectors.json'), 'utf8')) as {
  hj212: { crc_check: { input_ascii: string; hj212_crc_hex: string }; packets: { name: string; text: string }[] };
};

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (e instanceof Hj212Error) return e.code;
    throw e;
  }
  return 'ok';
};

describe('HJ 212 codec', () => {
  it('Appendix A CRC check value', () => {
    expect(crcHex(vectors.hj212.crc_check.input_ascii)).toBe(vectors.hj212.crc_check.hj212_crc_hex);
    expect(crcHex('123456789')).not.toBe('4B37');
  });

  it.each(vectors.hj212.packets.map((p) => [p.name, p.text]))('%s: parses and re-encodes to the same text', (_name, text) => {
    const p = decodePacket(text);
    expect(encodePacket(p)).toBe(text);
  });

  it('fields and CP items come out as written', () => {
    const rtd = decodePacket(vectors.hj212.packets.find((p) => p.text.includes('a34004-Flag'))!.text);
    expect(field(rtd, 'ST')).toBe('39');
    expect(field(rtd, 'CN')).toBe('2011');
    expect(field(rtd, 'Flag')).toBe('5');
    expect(cpValue(rtd, 'DataTime')).toBe('20240501120000');
    expect(cpValue(rtd, 'a34002-Rtd')).toBe('80');
    expect(cpValue(rtd, 'a01008-Flag')).toBe('N');
    expect(rtd.cp[1]).toEqual([
      ['a34004-Rtd', '35'],
      ['a34004-Flag', 'N'],
    ]);
    const ack = decodePacket(vectors.hj212.packets.find((p) => p.text.includes('CN=9014'))!.text);
    expect(ack.cp).toEqual([]);
    expect(field(ack, 'QN')).toBe('20240501120000000');
  });

  it('a wrong CRC, a wrong length, a truncated packet and non-ASCII bytes in CP are typed errors', () => {
    const text = vectors.hj212.packets[1]!.text;
    expect(code(() => decodePacket(text.replace('E541', 'E542')))).toBe('bad_crc');
    expect(code(() => decodePacket(text.replace('##0239', '##0238')))).toBe('bad_length');
    expect(code(() => decodePacket(text.replace('##0239', '##02x9')))).toBe('bad_length');
    expect(code(() => decodePacket(text.slice(0, 120)))).toBe('truncated');
    expect(code(() => decodePacket(text.slice(1)))).toBe('bad_header');
    // a correctly framed packet (length in UTF-8 bytes, right CRC) whose CP carries non-ASCII text
    const data = 'QN=20240501120000000;ST=39;CN=2011;PW=123456;MN=A1;Flag=4;CP=&&DataTime=20240501120000;备注=工地&&';
    const framed = `##${String(Buffer.byteLength(data)).padStart(4, '0')}${data}${crcHex(data)}\r\n`;
    expect(Buffer.byteLength(data)).toBeGreaterThan(data.length);
    expect(code(() => decodePacket(framed))).toBe('non_ascii');
  });

  it('a long CP is split over packets with PNUM/PNO, each one valid and under the limit', () => {
    const groups: [string, string][][] = [[['DataTime', '20240501120000']]];
    for (let i = 0; i < 60; i++) groups.push([[`a${String(34000 + i)}-Avg`, '123.4'], [`a${String(34000 + i)}-Flag`, 'N']]);
    const out = buildPackets({ qn: '20240501120000000', st: 39, cn: 2051, pw: '123456', mn: 'MN1', ack: true }, groups, 400);
    expect(out.length).toBeGreaterThan(2);
    const parsed = out.map((t) => decodePacket(t));
    parsed.forEach((p, i) => {
      expect(field(p, 'PNUM')).toBe(String(out.length));
      expect(field(p, 'PNO')).toBe(String(i + 1));
      expect(field(p, 'Flag')).toBe('7');
      expect(cpValue(p, 'DataTime')).toBe('20240501120000');
      expect(Number(out[i]!.slice(2, 6))).toBeLessThanOrEqual(400);
    });
    const items = parsed.flatMap((p) => p.cp.slice(1));
    expect(items).toEqual(groups.slice(1));
    // short enough: one packet, no PNUM
    const one = buildPackets({ qn: '1', st: 39, cn: 2011, pw: 'p', mn: 'm', ack: false }, groups.slice(0, 3));
    expect(one).toHaveLength(1);
    expect(field(decodePacket(one[0]!), 'PNUM')).toBeUndefined();
    expect(field(decodePacket(one[0]!), 'Flag')).toBe('4');
  });

  it('a stream splits into packets at CRLF and keeps a partial tail', () => {
    const [a, b] = [vectors.hj212.packets[0]!.text, vectors.hj212.packets[3]!.text];
    const { packets, rest } = splitStream(Buffer.from(`junk${a}${b}${a.slice(0, 30)}`));
    expect(packets.map((p) => p.toString())).toEqual([a, b]);
    expect(rest.toString()).toBe(a.slice(0, 30));
  });

  it('times are local (Beijing) YYYYMMDDhhmmss', () => {
    expect(hjTime(Date.parse('2024-05-01T04:00:00.123Z'), 'Asia/Shanghai')).toBe('20240501120000');
    expect(hjTime(Date.parse('2024-05-01T04:00:00.123Z'), 'Asia/Shanghai', true)).toBe('20240501120000123');
  });
});

describe('AQI (HJ 633)', () => {
  it.each([
    // [pollutant, concentration, IAQI under 2026, IAQI under 2012], worked by hand from the breakpoints
    ['pm25', 0, 0, 0],
    ['pm25', 34, 49, 49],
    ['pm25', 35, 50, 50],
    ['pm25', 36, 52, 52],
    ['pm25', 59, 98, 80],
    ['pm25', 60, 100, 82],
    ['pm25', 61, 101, 83],
    ['pm25', 75, 114, 100],
    ['pm25', 76, 115, 102],
    ['pm25', 115, 150, 150],
    ['pm25', 116, 152, 152],
    ['pm25', 150, 200, 200],
    ['pm25', 151, 201, 201],
    ['pm25', 250, 300, 300],
    ['pm25', 350, 400, 400],
    ['pm25', 500, 500, 500],
    ['pm25', 501, 500, 500],
    ['pm10', 50, 50, 50],
    ['pm10', 51, 51, 51],
    ['pm10', 119, 100, 85],
    ['pm10', 120, 100, 85],
    ['pm10', 121, 101, 86],
    ['pm10', 150, 112, 100],
    ['pm10', 151, 112, 101],
    ['pm10', 250, 150, 150],
    ['pm10', 251, 151, 151],
    ['pm10', 350, 200, 200],
    ['pm10', 420, 300, 300],
    ['pm10', 421, 302, 302],
    ['pm10', 500, 400, 400],
    ['pm10', 600, 500, 500],
  ] as const)('%s %d µg/m³ → IAQI %d (2026), %d (2012)', (p, c, v2026, v2012) => {
    expect(iaqi(p, c, 'hj633-2026')).toBe(v2026);
    expect(iaqi(p, c, 'hj633-2012')).toBe(v2012);
  });

  it('AQI is the largest IAQI, with category, colour and primary pollutant above 50', () => {
    expect(aqi({ pm25: 60, pm10: 80 })).toMatchObject({ aqi: 100, category: '良', level: 2, colour: '#FFFF00', primary: ['pm25'] });
    expect(aqi({ pm25: 60, pm10: 80 }, 'hj633-2012')).toMatchObject({ aqi: 82, category: '良', primary: ['pm25'] });
    expect(aqi({ pm25: 20, pm10: 40 })).toMatchObject({ aqi: 40, category: '优', primary: [] });
    expect(aqi({ pm25: 115, pm10: 250 })).toMatchObject({ aqi: 150, category: '轻度污染', primary: ['pm25', 'pm10'] });
    expect(aqi({ pm10: 351 })).toMatchObject({ aqi: 202, category: '重度污染', colour: '#99004C' });
    expect(aqi({ pm25: 251 })).toMatchObject({ aqi: 301, category: '严重污染', colour: '#7E0023' });
    expect(aqi({ pm25: 116 })!.category).toBe('中度污染');
    expect(aqi({})).toBeNull();
  });
});
