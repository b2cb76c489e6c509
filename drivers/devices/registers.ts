/** Pure register-map arithmetic shared by the gateway (decode) and the simulator (encode). */
import type { RegisterSpec, RegisterType, Values, WordOrder } from './types.js';

export const wordsOf = (t: RegisterType): 1 | 2 => (t === 'u16' || t === 's16' ? 1 : 2);

export interface ReadBlock {
  fn: 3 | 4;
  address: number;
  count: number;
}

/** Group a map into as few reads as possible: contiguous (gaps ≤ maxGap words) runs of one function, ≤ 125 words each. */
export function planReads(registers: RegisterSpec[], maxGap = 4): ReadBlock[] {
  const blocks: ReadBlock[] = [];
  for (const fn of [3, 4] as const) {
    const regs = registers.filter((r) => r.fn === fn).sort((a, b) => a.address - b.address);
    let cur: ReadBlock | undefined;
    for (const r of regs) {
      const end = r.address + wordsOf(r.type);
      if (cur && r.address <= cur.address + cur.count + maxGap && end - cur.address <= 125) {
        cur.count = Math.max(cur.count, end - cur.address);
      } else {
        cur = { fn, address: r.address, count: end - r.address };
        blocks.push(cur);
      }
    }
  }
  return blocks;
}

/** Round a scaled value to the decimals its scale carries (0.1 → 1 decimal), without float noise. */
function roundToScale(v: number, scale: number): number {
  if (scale >= 1 && Number.isInteger(scale)) return v;
  const p = 10 ** Math.min(6, Math.ceil(-Math.log10(scale) - 1e-9));
  return Math.round(v * p) / p;
}

function joinWords(hi: number, lo: number): number {
  return ((hi & 0xffff) * 0x10000 + (lo & 0xffff)) >>> 0;
}

/** Decode one register from its words (as read, in address order), starting at `off`. */
export function decodeRegister(spec: RegisterSpec, words: readonly number[], off = 0): number {
  let raw: number;
  // read in place (no slice, no pairs: this runs for every metric of every poll)
  const a = words[off] ?? 0;
  const b = words[off + 1] ?? 0;
  const le = spec.wordOrder === 'le';
  const hi = le ? b : a;
  const lo = le ? a : b;
  switch (spec.type) {
    case 'u16':
      raw = a & 0xffff;
      break;
    case 's16':
      raw = a & 0x8000 ? (a & 0xffff) - 0x10000 : a & 0xffff;
      break;
    case 'u32':
      raw = joinWords(hi, lo);
      break;
    case 's32':
      raw = joinWords(hi, lo) | 0;
      break;
    case 'f32': {
      const buf = Buffer.alloc(4);
      buf.writeUInt32BE(joinWords(hi, lo));
      raw = buf.readFloatBE(0);
      return Number((raw * spec.scale).toPrecision(7));
    }
  }
  return roundToScale(raw * spec.scale, spec.scale);
}

/** Encode a metric value into the words of its register (address order). */
export function encodeRegister(spec: RegisterSpec, value: number): number[] {
  const order = (hi: number, lo: number, o: WordOrder) => (o === 'le' ? [lo, hi] : [hi, lo]);
  if (spec.type === 'f32') {
    const buf = Buffer.alloc(4);
    buf.writeFloatBE(value / spec.scale);
    return order(buf.readUInt16BE(0), buf.readUInt16BE(2), spec.wordOrder);
  }
  const raw = Math.round(value / spec.scale);
  switch (spec.type) {
    case 'u16':
      return [Math.max(0, Math.min(0xffff, raw))];
    case 's16':
      return [Math.max(-0x8000, Math.min(0x7fff, raw)) & 0xffff];
    case 'u32': {
      const v = Math.max(0, Math.min(0xffffffff, raw));
      return order(Math.floor(v / 0x10000), v & 0xffff, spec.wordOrder);
    }
    case 's32': {
      const v = Math.max(-0x80000000, Math.min(0x7fffffff, raw)) >>> 0;
      return order(Math.floor(v / 0x10000), v & 0xffff, spec.wordOrder);
    }
  }
}

/** Decode every register of a map from blocks read with `planReads`. */
export function decodeBlocks(registers: RegisterSpec[], blocks: { block: ReadBlock; words: number[] }[]): Values {
  const values: Values = {};
  for (const r of registers) {
    for (const b of blocks) {
      const k = b.block;
      if (k.fn !== r.fn || r.address < k.address || r.address + wordsOf(r.type) > k.address + k.count) continue;
      values[r.metric] = decodeRegister(r, b.words, r.address - k.address);
      break;
    }
  }
  return values;
}
