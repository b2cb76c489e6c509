/** Fault injection: what a faulty device does to one reply. */
export type Fault =
  | { kind: 'timeout' }
  | { kind: 'crc-error' }
  | { kind: 'garbage' }
  | { kind: 'short-frame' }
  | { kind: 'disconnect' }
  | { kind: 'exception'; code: number }
  | { kind: 'slow'; ms: number };

export function parseFault(s: string): Fault {
  if (s.startsWith('exception:')) return { kind: 'exception', code: Number(s.slice(10)) };
  if (s.startsWith('slow:')) return { kind: 'slow', ms: Number(s.slice(5)) };
  if (s === 'timeout' || s === 'crc-error' || s === 'garbage' || s === 'short-frame' || s === 'disconnect') return { kind: s };
  throw new Error(`unknown fault "${s}"`);
}

export function faultName(f: Fault): string {
  if (f.kind === 'exception') return `exception:${f.code}`;
  if (f.kind === 'slow') return `slow:${f.ms}`;
  return f.kind;
}

/** Bytes that look like line noise; deterministic per counter so tests can repeat. */
export function noiseBytes(n: number, salt: number): Buffer {
  const b = Buffer.alloc(n);
  let x = (salt * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  // Never start like a Modbus reply from a plausible unit, so the master cannot mistake it for one.
  b[0] = 0xfe;
  return b;
}

/** Flip the CRC (or checksum) bytes at the end of a frame. */
export function corruptTail(frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  out[out.length - 1] = out[out.length - 1]! ^ 0x5a;
  out[out.length - 2] = out[out.length - 2]! ^ 0xa5;
  return out;
}
