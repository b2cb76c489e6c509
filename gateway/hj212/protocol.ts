/** HJ 212 pieces shared by the gateway's uplink and the platform stand-in: codes, builders. */
import { roundFor } from '../metrics.js';
import { buildPackets, encodePacket, type CpGroup, type Hj212Packet } from './codec.js';

// Pollutant and parameter codes (SPEC §9) are in the metric catalog: hj212Codes(), metricOfCode().

export const CN = {
  rtd: '2011',
  stopRtd: '2012',
  minute: '2051',
  hour: '2061',
  day: '2031',
  getTime: '1011',
  setTime: '1012',
  /** the site asks the platform to set its time (answered with 1012) */
  timeCalibration: '1013',
  getRtdInterval: '1061',
  setRtdInterval: '1062',
  getMinInterval: '1063',
  setMinInterval: '1064',
  qnRtn: '9011',
  exeRtn: '9012',
  dataAck: '9014',
} as const;

export const PERIOD_CN = { minute: CN.minute, hour: CN.hour, day: CN.day } as const;

/** Numbers as HJ 212 likes them: no exponent, at most 3 decimals. */
export function hjNumber(v: number, metric?: string): string {
  return String(metric ? roundFor(metric, v) : Math.round(v * 1000) / 1000);
}

/** A reply from the platform side or the gateway side (9011, 9012, 9014 …). */
export function reply(o: { qn: string; st: string; cn: string; pw: string; mn: string; cp?: CpGroup[] }): string {
  const p: Hj212Packet = {
    fields: [
      ['QN', o.qn],
      ['ST', o.st],
      ['CN', o.cn],
      ['PW', o.pw],
      ['MN', o.mn],
      ['Flag', '4'],
    ],
    cp: o.cp ?? [],
  };
  return encodePacket(p);
}

export { buildPackets };
