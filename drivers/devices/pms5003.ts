/** Plantower PMS5003 in passive mode: the gateway asks, the sensor answers one 32-byte frame. */
import type { FrameDeviceDefinition, Values } from './types.js';

const FRAME_LEN = 32;

/** 16-bit big-endian sum of every byte before the last two. */
export function pmsChecksum(buf: Uint8Array, end: number): number {
  let s = 0;
  for (let i = 0; i < end; i++) s += buf[i]!;
  return s & 0xffff;
}

/** A 7-byte command: 42 4D CMD DATAH DATAL CHKH CHKL. */
export function pmsCommand(cmd: number, data: number): Buffer {
  const b = Buffer.from([0x42, 0x4d, cmd, (data >> 8) & 0xff, data & 0xff, 0, 0]);
  b.writeUInt16BE(pmsChecksum(b, 5), 5);
  return b;
}

export const PMS_PASSIVE_MODE = pmsCommand(0xe1, 0);
export const PMS_READ_PASSIVE = pmsCommand(0xe2, 0);

/** Decoded fields of a data frame (CF=1 and atmospheric). */
export function decodePmsFrame(frame: Buffer): Record<string, number> {
  return {
    pm1_0_cf1: frame.readUInt16BE(4),
    pm2_5_cf1: frame.readUInt16BE(6),
    pm10_cf1: frame.readUInt16BE(8),
    pm1_0_atm: frame.readUInt16BE(10),
    pm2_5_atm: frame.readUInt16BE(12),
    pm10_atm: frame.readUInt16BE(14),
  };
}

export const pms5003: FrameDeviceDefinition = {
  kind: 'frame',
  name: 'pms5003',
  title: 'Plantower PMS5003 laser PM sensor (passive mode)',
  defaults: { baudRate: 9600, parity: 'none' },
  metrics: [
    { metric: 'pm1', unit: 'µg/m³' },
    { metric: 'pm25', unit: 'µg/m³' },
    { metric: 'pm10', unit: 'µg/m³' },
  ],
  initCommands: [PMS_PASSIVE_MODE],
  pollCommand: PMS_READ_PASSIVE,
  frameLength: FRAME_LEN,
  findFrame(rx) {
    for (let i = 0; i + 1 < rx.length; i++) {
      if (rx[i] !== 0x42 || rx[i + 1] !== 0x4d) continue;
      if (i + 4 > rx.length) return 'need';
      if (rx.readUInt16BE(i + 2) !== FRAME_LEN - 4) continue; // a command echo or a short answer frame
      if (i + FRAME_LEN > rx.length) return 'need';
      const sum = rx.readUInt16BE(i + FRAME_LEN - 2);
      if (sum !== pmsChecksum(rx.subarray(i), FRAME_LEN - 2)) return { bad: i };
      return { offset: i };
    }
    return 'need';
  },
  decode(frame): Values {
    const d = decodePmsFrame(frame);
    return { pm1: d.pm1_0_atm!, pm25: d.pm2_5_atm!, pm10: d.pm10_atm! };
  },
  encode(values) {
    const f = Buffer.alloc(FRAME_LEN);
    f[0] = 0x42;
    f[1] = 0x4d;
    f.writeUInt16BE(FRAME_LEN - 4, 2);
    const w = (i: number, v: number | undefined) => f.writeUInt16BE(Math.max(0, Math.min(0xffff, Math.round(v ?? 0))), 4 + i * 2);
    // CF=1 and atmospheric values are the same in the simulator (they differ only above ~100 µg/m³ on real sensors).
    w(0, values.pm1);
    w(1, values.pm25);
    w(2, values.pm10);
    w(3, values.pm1);
    w(4, values.pm25);
    w(5, values.pm10);
    f.writeUInt16BE(pmsChecksum(f, FRAME_LEN - 2), FRAME_LEN - 2);
    return f;
  },
  isPollCommand: (cmd) => cmd[2] === 0xe2,
  commandLength(cmd) {
    if (cmd[0] !== 0x42) return 1;
    if (cmd.length < 2) return undefined;
    return cmd[1] === 0x4d ? 7 : 1;
  },
};
