/** Nova SDS011 in query mode: the gateway sends a 19-byte query, the sensor answers a 10-byte AA C0 frame. */
import type { FrameDeviceDefinition, Values } from './types.js';

const FRAME_LEN = 10;

/** Sum of the data bytes (2..7 of a reply, 2..16 of a command) & 0xFF. */
export function sdsChecksum(buf: Uint8Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i <= to; i++) s += buf[i]!;
  return s & 0xff;
}

/** A 19-byte command AA B4 <data 13 bytes> FF FF CS AB addressed to every sensor. */
export function sdsCommand(data: number[]): Buffer {
  const b = Buffer.alloc(19);
  b[0] = 0xaa;
  b[1] = 0xb4;
  data.forEach((v, i) => (b[2 + i] = v));
  b[15] = 0xff;
  b[16] = 0xff;
  b[17] = sdsChecksum(b, 2, 16);
  b[18] = 0xab;
  return b;
}

export const SDS_SET_QUERY_MODE = sdsCommand([2, 1, 1]);
export const SDS_QUERY = sdsCommand([4]);

export const sds011: FrameDeviceDefinition = {
  kind: 'frame',
  name: 'sds011',
  title: 'Nova SDS011 PM sensor (query mode)',
  defaults: { baudRate: 9600, parity: 'none' },
  metrics: [
    { metric: 'pm25', unit: 'µg/m³' },
    { metric: 'pm10', unit: 'µg/m³' },
  ],
  initCommands: [SDS_SET_QUERY_MODE],
  pollCommand: SDS_QUERY,
  frameLength: FRAME_LEN,
  findFrame(rx) {
    for (let i = 0; i + 1 < rx.length; i++) {
      if (rx[i] !== 0xaa || rx[i + 1] !== 0xc0) continue; // AA C5 replies to settings are skipped
      if (i + FRAME_LEN > rx.length) return 'need';
      if (rx[i + 9] !== 0xab || rx[i + 8] !== sdsChecksum(rx, i + 2, i + 7)) return { bad: i };
      return { offset: i };
    }
    return 'need';
  },
  decode(frame): Values {
    return { pm25: frame.readUInt16LE(2) / 10, pm10: frame.readUInt16LE(4) / 10 };
  },
  encode(values) {
    const f = Buffer.alloc(FRAME_LEN);
    f[0] = 0xaa;
    f[1] = 0xc0;
    const c = (v: number | undefined) => Math.max(0, Math.min(0xffff, Math.round((v ?? 0) * 10)));
    f.writeUInt16LE(c(values.pm25), 2);
    f.writeUInt16LE(c(values.pm10), 4);
    f[6] = 0x01; // device id
    f[7] = 0x02;
    f[8] = sdsChecksum(f, 2, 7);
    f[9] = 0xab;
    return f;
  },
  isPollCommand: (cmd) => cmd[2] === 4,
  commandLength(cmd) {
    if (cmd[0] !== 0xaa) return 1;
    if (cmd.length < 2) return undefined;
    return cmd[1] === 0xb4 ? 19 : 1;
  },
};

/** The reply an SDS011 gives to a setting command (AA C5 …). */
export function sdsSettingReply(cmd: Buffer): Buffer {
  const f = Buffer.alloc(FRAME_LEN);
  f[0] = 0xaa;
  f[1] = 0xc5;
  f[2] = cmd[2]!;
  f[3] = cmd[3]!;
  f[4] = cmd[4]!;
  f[6] = 0x01;
  f[7] = 0x02;
  f[8] = sdsChecksum(f, 2, 7);
  f[9] = 0xab;
  return f;
}
