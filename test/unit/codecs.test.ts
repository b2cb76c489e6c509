/** Every codec against the independently checked literals in test/fixtures/vectors.json (a copy of the project's shared vectors). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { crc16modbus, crcOk } from '../../drivers/modbus/crc16.js';
import { encodeRtuRequest, rtuExchange } from '../../drivers/modbus/rtu.js';
import { encodeRequest, type ModbusRequest } from '../../drivers/modbus/pdu.js';
import { tcpExchange } from '../../drivers/modbus/tcp.js';
import { decodeRegister, encodeRegister, planReads } from '../../drivers/devices/registers.js';
import { pms5003, pmsCommand, decodePmsFrame } from '../../drivers/devices/pms5003.js';
import { sds011, SDS_QUERY } from '../../drivers/devices/sds011.js';
import { renkeWindSpeed } from '../../drivers/devices/renke-wind-speed.js';
import { cwtWeatherStation } from '../../drivers/devices/cwt-weather-station.js';
import { beaufort } from '../../drivers/devices/beaufort.js';
import type { RegisterSpec } from '../../drivers/devices/types.js';
import { isDriverError } from '../../drivers/errors.js';

const vectors = JSON.parse(readFileSync(path.resolve(__dirname, '../fixtures/vectors.json'), 'utf8'));
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const frame = (name: RegExp) => hex(vectors.modbus_rtu.frames.find((f: { name: string }) => name.test(f.name)).hex);

describe('Modbus RTU codec', () => {
  it('CRC-16/MODBUS of "123456789" is the check value', () => {
    expect(crc16modbus(Buffer.from(vectors.modbus_rtu.crc_check.input_ascii)).toString(16).toUpperCase()).toBe(vectors.modbus_rtu.crc_check.crc16_modbus_hex);
  });

  it('encodes requests exactly as the vectors', () => {
    expect(encodeRtuRequest(1, { fn: 3, address: 0, count: 1 })).toEqual(frame(/read 1 holding/));
    expect(encodeRtuRequest(1, { fn: 3, address: 0, count: 2 })).toEqual(frame(/read 2 holding/));
    expect(encodeRtuRequest(1, { fn: 5, address: 0, value: true })).toEqual(frame(/write single coil/));
    expect(encodeRtuRequest(1, { fn: 2, address: 0, count: 8 })).toEqual(frame(/discrete inputs/));
  });

  it('write requests are the PDUs of the Modbus Application Protocol spec (v1.1b3) examples, framed for RTU and TCP', () => {
    // §6.6 write single register, §6.11 write multiple coils (10 coils from 20: CD 01), §6.12 write multiple registers
    const cases: [ModbusRequest, string][] = [
      [{ fn: 6, address: 1, value: 3 }, '06 0001 0003'],
      [{ fn: 15, address: 0x13, values: [true, false, true, true, false, false, true, true, true, false] }, '0F 0013 000A 02 CD01'],
      [{ fn: 16, address: 1, values: [0x000a, 0x0102] }, '10 0001 0002 04 000A 0102'],
    ];
    for (const [req, pdu] of cases) {
      expect(encodeRequest(req)).toEqual(hex(pdu));
      const rtu = encodeRtuRequest(17, req);
      expect(rtu.subarray(0, -2)).toEqual(Buffer.concat([hex('11'), hex(pdu)]));
      expect(crcOk(rtu)).toBe(true);
      // MBAP: transaction id, protocol 0, length (unit + PDU), unit
      const tcp = tcpExchange(0x1234, 17, req, 100).tx;
      expect(tcp).toEqual(Buffer.concat([hex(`1234 0000 ${(hex(pdu).length + 1).toString(16).padStart(4, '0')} 11`), hex(pdu)]));
    }
  });

  it('every vector frame carries a valid CRC', () => {
    for (const f of vectors.modbus_rtu.frames) expect(crcOk(hex(f.hex)), f.name).toBe(true);
  });

  it('decodes the wind speed reply to 8.6 m/s through the renke map', () => {
    const ex = rtuExchange(1, { fn: 3, address: 0, count: 1 }, 100);
    const r = ex.parse(frame(/0x0056/));
    expect(r && 'done' in r && r.done).toEqual({ fn: 3, registers: [0x56] });
    const words = (r as { done: { registers: number[] } }).done.registers;
    expect(decodeRegister(renkeWindSpeed.registers[0]!, words)).toBe(8.6);
  });

  it('decodes the temperature/humidity reply to 27.3 °C and 62.6 %RH', () => {
    const ex = rtuExchange(1, { fn: 3, address: 0, count: 2 }, 100);
    const r = ex.parse(frame(/27\.3/));
    const regs = (r as { done: { registers: number[] } }).done.registers;
    const t: RegisterSpec = { metric: 'temperature', fn: 3, address: 0, type: 's16', wordOrder: 'be', scale: 0.1, unit: '°C' };
    expect(decodeRegister(t, [regs[0]!])).toBe(27.3);
    expect(decodeRegister({ ...t, metric: 'humidity', type: 'u16' }, [regs[1]!])).toBe(62.6);
  });

  it('finds a reply behind leading garbage, and classifies a bad CRC and a short frame', () => {
    const reply = frame(/0x0056/);
    const ex = rtuExchange(1, { fn: 3, address: 0, count: 1 }, 100);
    const behind = ex.parse(Buffer.concat([hex('FE 77 13'), reply]));
    expect(behind && 'done' in behind).toBe(true);
    const bad = Buffer.from(reply);
    bad[bad.length - 1]! ^= 0xff;
    expect(ex.parse(bad)).toBeUndefined();
    expect(ex.onSilence!(bad)?.code).toBe('crc');
    expect(ex.onSilence!(reply.subarray(0, 4))?.code).toBe('short_frame');
    expect(ex.onTimeout(Buffer.alloc(0)).code).toBe('timeout');
    expect(ex.onTimeout(hex('FE 77 13 99 12')).code).toBe('garbage');
  });

  it('turns an exception reply into a typed error with the exception code', () => {
    const ex = rtuExchange(1, { fn: 3, address: 0, count: 1 }, 100);
    const body = hex('01 83 02');
    const withCrc = Buffer.concat([body, Buffer.from([0, 0])]);
    withCrc.writeUInt16LE(crc16modbus(body), 3);
    const r = ex.parse(withCrc);
    expect(r && 'fail' in r && isDriverError(r.fail) && r.fail.code).toBe('exception');
    expect(r && 'fail' in r && r.fail.context.exceptionCode).toBe(2);
  });
});

describe('register types and word order', () => {
  const spec = (type: RegisterSpec['type'], wordOrder: RegisterSpec['wordOrder'], scale = 1): RegisterSpec => ({ metric: 'x', fn: 3, address: 0, type, wordOrder, scale, unit: '' });
  it('decodes 32-bit values from known words', () => {
    expect(decodeRegister(spec('f32', 'be'), [0x3fc0, 0x0000])).toBe(1.5);
    expect(decodeRegister(spec('f32', 'le'), [0x0000, 0x3fc0])).toBe(1.5);
    expect(decodeRegister(spec('s32', 'be'), [0xffff, 0xfffe])).toBe(-2);
    expect(decodeRegister(spec('u32', 'be'), [0x0001, 0x0002])).toBe(65538);
    expect(decodeRegister(spec('u32', 'le'), [0x0002, 0x0001])).toBe(65538);
    expect(decodeRegister(spec('s16', 'be', 0.1), [0xffdd])).toBe(-3.5);
  });
  it('encodes to the same known words', () => {
    expect(encodeRegister(spec('f32', 'be'), 1.5)).toEqual([0x3fc0, 0x0000]);
    expect(encodeRegister(spec('f32', 'le'), 1.5)).toEqual([0x0000, 0x3fc0]);
    expect(encodeRegister(spec('s32', 'be'), -2)).toEqual([0xffff, 0xfffe]);
    expect(encodeRegister(spec('s16', 'be', 0.1), -3.5)).toEqual([0xffdd]);
  });
  it('reads the whole weather head in one request', () => {
    expect(planReads(cwtWeatherStation.registers)).toEqual([{ fn: 3, address: 0x01f4, count: 10 }]);
  });
});

describe('PMS5003 codec', () => {
  const v = vectors.pms5003;
  it('decodes the vector frame', () => {
    const f = hex(v.frames[0].hex);
    expect(pms5003.findFrame(f)).toEqual({ offset: 0 });
    expect(decodePmsFrame(f)).toEqual(v.frames[0].decoded);
    expect(pms5003.decode(f)).toEqual({ pm1: 4, pm25: 5, pm10: 8 });
  });
  it('builds every command exactly', () => {
    expect(pmsCommand(0xe1, 0)).toEqual(hex(v.commands.passive_mode));
    expect(pmsCommand(0xe1, 1)).toEqual(hex(v.commands.active_mode));
    expect(pmsCommand(0xe2, 0)).toEqual(hex(v.commands.read_in_passive_mode));
    expect(pmsCommand(0xe4, 0)).toEqual(hex(v.commands.sleep));
    expect(pmsCommand(0xe4, 1)).toEqual(hex(v.commands.wake));
    expect(pms5003.pollCommand).toEqual(hex(v.commands.read_in_passive_mode));
    expect(pms5003.initCommands).toEqual([hex(v.commands.passive_mode)]);
  });
  it('rejects a frame with a wrong checksum', () => {
    const f = hex(v.frames[0].hex);
    f[10] = 0x55;
    expect(pms5003.findFrame(f)).toEqual({ bad: 0 });
  });
});

describe('SDS011 codec', () => {
  const v = vectors.sds011;
  it('decodes the vector frame', () => {
    const f = hex(v.frames[0].hex);
    expect(sds011.findFrame(f)).toEqual({ offset: 0 });
    expect(sds011.decode(f)).toEqual({ pm25: v.frames[0].decoded.pm2_5, pm10: v.frames[0].decoded.pm10 });
  });
  it('builds the query command exactly', () => {
    expect(SDS_QUERY).toEqual(hex(v.commands.query_all_sensors));
  });
  it('rejects a wrong checksum', () => {
    const f = hex(v.frames[0].hex);
    f[8] = 0;
    expect(sds011.findFrame(f)).toEqual({ bad: 0 });
  });
});

describe('Beaufort (GB/T 28591-2012)', () => {
  it.each([
    [0.2, 0], [0.25, 1], [1.5, 1], [1.6, 2], [3.3, 2], [3.34, 2], [3.35, 3], [3.4, 3], [5.4, 3], [5.5, 4], [7.9, 4], [8.0, 5], [10.7, 5], [10.8, 6], [13.9, 7], [17.2, 8], [20.7, 8],
  ])('%f m/s is level %i', (speed, level) => {
    expect(beaufort(speed)).toBe(level);
  });
});
