/**
 * HJ 212-2017 uplink to a government platform over TCP (SPEC §9).
 *
 * - 2011 real-time values every `rtdIntervalS` while connected (not stored: real-time is real-time).
 * - 2051 / 2061 / 2031 minute, hour and day data: every closed period is queued in SQLite
 *   (its own upload queue, `store.uploads('hj212')`) and sent oldest first; with `ackRequired` each waits for 9014 (10 s, 3 tries,
 *   then the connection is dropped and rebuilt), and only an acknowledged period leaves the queue,
 *   so an outage is filled from the stored aggregates after reconnecting, nothing twice after its ack.
 * - Platform requests: 1011/1012 time, 1061/1062 real-time interval, 1063/1064 minute interval,
 *   2011/2012 start/stop real-time, 2051/2061/2031 with BeginTime/EndTime (back-fill), each
 *   answered with 9011 (QnRtn) and 9012 (ExeRtn).
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { periodBounds, zoneOffsetMs, type Aggregate, type Period } from '../aggregates.js';
import type { Hj212Platform, Metric } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Flag } from '../reading.js';
import { Backoff } from '../../drivers/reopen.js';
import type { AggregateStore, Upload, UploadQueue } from '../store-tables.js';
import type { Uplink } from '../uplink/uplink.js';
import { Hj212Error, buildPackets, cpValue, decodePacket, field, hjTime, splitStream, type CpGroup, type Hj212Packet } from './codec.js';
import { hj212Codes } from '../metrics.js';
import { CN, PERIOD_CN, hjNumber, reply } from './protocol.js';

export interface Hj212UplinkOptions {
  cfg: Hj212Platform;
  /** the platform's name (its upload queue's, and its logs'): `hj212` for the first */
  name?: string;
  mn: string;
  timeZone: string;
  /** the stored aggregates it reports from */
  aggregates: AggregateStore;
  /** its own queue of periods to send (`store.uploads(name)`) */
  queue: UploadQueue;
  now: () => number;
  logger: Logger;
  /** metric → device whose values are reported */
  sources: Partial<Record<Metric, string>>;
  /** the latest value and flag of each source metric (real-time data) */
  latest: () => Partial<Record<string, { v: number; flag: Flag }>>;
  /** Whether NTP has set the system clock (undefined: not known): until it has, the platform's time is asked for (1013) and its set-time (1012) accepted. */
  clockSynced?: () => boolean | undefined;
  /** Set the gateway's time (the platform's 1012); returns the correction in ms. */
  setTime?: (ms: number) => number;
  ackTimeoutMs?: number;
  tries?: number;
  reconnectMinMs?: number;
}

const PERIOD_OF_CN: Record<string, Period> = { [CN.minute]: 'minute', [CN.hour]: 'hour', [CN.day]: 'day' };

/** `YYYYMMDDhhmmss` local → ms. */
export function parseHjTime(s: string, timeZone: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(s);
  if (!m) throw new Hj212Error('bad_field', `expected a time YYYYMMDDhhmmss, got "${s}"`);
  const utc = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return utc - zoneOffsetMs(utc, timeZone);
}

export class Hj212Uplink extends EventEmitter implements Uplink {
  readonly name: string;
  readonly takes = 'aggregates';
  private socket: net.Socket | undefined;
  private linkUp = false;
  private stopped = false;
  private rx: Buffer = Buffer.alloc(0);
  private readonly backoff: Backoff;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private sending = false;
  private waiting: { qn: string; resolve: (ok: boolean) => void } | undefined;
  private nextRtd = 0;
  private rtdOn = true;
  rtdIntervalS: number;
  minIntervalMin: number;
  /** How long to wait for 9014 (real time). */
  ackTimeoutMs: number;
  private qnSeq = 0;
  readonly counters = { connects: 0, sent: 0, acked: 0, retries: 0, rtd: 0, badPackets: 0, requests: 0 };

  constructor(private readonly o: Hj212UplinkOptions) {
    super();
    this.name = o.name ?? 'hj212';
    this.backoff = new Backoff(o.reconnectMinMs ?? 1000, o.cfg.reconnectMaxS * 1000);
    this.rtdIntervalS = o.cfg.rtdIntervalS;
    this.minIntervalMin = o.cfg.minIntervalMin;
    this.ackTimeoutMs = o.ackTimeoutMs ?? 10_000;
  }

  get connected(): boolean {
    return this.linkUp;
  }

  get isConnected(): boolean {
    return this.linkUp;
  }

  start(): void {
    this.connect();
  }

  private connect(): void {
    if (this.stopped) return;
    const s = net.connect({ host: this.o.cfg.host, port: this.o.cfg.port });
    this.socket = s;
    s.setNoDelay(true);
    s.on('connect', () => {
      this.linkUp = true;
      this.counters.connects++;
      this.backoff.reset();
      this.rx = Buffer.alloc(0);
      this.o.logger.info({ host: this.o.cfg.host, port: this.o.cfg.port }, 'HJ 212 platform connected');
      this.emit('connect');
      // a clock NTP has not set: ask the platform for its time (it answers with a 1012 set-time)
      if (this.o.setTime && this.o.clockSynced?.() !== true) for (const t of buildPackets(this.head(this.newQn(), CN.timeCalibration, false), [])) this.write(t);
      void this.drain();
    });
    s.on('data', (d) => this.onData(d));
    s.on('error', (e) => this.o.logger.warn({ err: e.message }, `HJ 212 platform: ${e.message}`));
    s.on('close', () => {
      const was = this.linkUp;
      this.linkUp = false;
      this.waiting?.resolve(false);
      if (was) this.emit('disconnect');
      if (this.stopped) return;
      this.reconnectTimer = setTimeout(() => this.connect(), this.backoff.next());
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.waiting?.resolve(false);
    this.socket?.destroy();
  }

  private newQn(): string {
    // QN: local time with ms; a counter keeps two packets of one ms apart
    const now = this.o.now();
    const qn = hjTime(now, this.o.timeZone, true);
    this.qnSeq = (this.qnSeq + 1) % 1000;
    return qn.slice(0, 14) + String((Number(qn.slice(14)) + this.qnSeq) % 1000).padStart(3, '0');
  }

  private write(text: string): void {
    if (this.linkUp) this.socket?.write(text);
  }

  private head(qn: string, cn: string, ack: boolean) {
    return { qn, st: this.o.cfg.st, cn, pw: this.o.cfg.pw, mn: this.o.mn, ack };
  }

  // ---------------------------------------------------------------- real-time

  /** Called on the gateway's tick. */
  tick(now: number): void {
    if (!this.linkUp || !this.rtdOn || now < this.nextRtd) return;
    const latest = this.o.latest();
    const groups: CpGroup[] = [[['DataTime', hjTime(now, this.o.timeZone)]]];
    for (const [metric, code] of Object.entries(hj212Codes())) {
      const x = latest[metric];
      if (!x) continue;
      groups.push([
        [`${code}-Rtd`, hjNumber(x.v, metric)],
        [`${code}-Flag`, x.flag],
      ]);
    }
    if (groups.length === 1) return; // nothing to say yet: the next tick tries again
    this.nextRtd = now + this.rtdIntervalS * 1000;
    for (const t of buildPackets(this.head(this.newQn(), CN.rtd, false), groups)) this.write(t);
    this.counters.rtd++;
  }

  // ---------------------------------------------------------------- periods

  /** Closed aggregates: queue the periods that HJ 212 reports. */
  onAggregates(list: Aggregate[]): void {
    const ups: Upload[] = [];
    for (const a of list) {
      if (!Object.values(this.o.sources).includes(a.device) || !hj212Codes()[a.metric]) continue;
      if (a.period === 'minute') {
        // 2051 covers minIntervalMin minutes: queue it when the last minute of the interval closes
        const minuteOfDay = Math.round((a.start - periodBounds('day', a.start, this.o.timeZone).start) / 60_000);
        if ((minuteOfDay + 1) % this.minIntervalMin !== 0) continue;
        ups.push({ cn: CN.minute, start: new Date(a.start - (this.minIntervalMin - 1) * 60_000).toISOString() });
      } else ups.push({ cn: PERIOD_CN[a.period], start: new Date(a.start).toISOString() });
    }
    if (!ups.length) return;
    this.o.queue.enqueue(ups);
    void this.drain();
  }

  /** CP groups of one period from the stored aggregates of the source devices. */
  private periodGroups(period: Period, startIso: string, spanMin = 1): CpGroup[] | undefined {
    const start = Date.parse(startIso);
    const end = period === 'minute' ? start + spanMin * 60_000 - 1 : start;
    const rows = this.o.aggregates.range(period, startIso, new Date(end).toISOString());
    const groups: CpGroup[] = [[['DataTime', hjTime(start, this.o.timeZone)]]];
    for (const [metric, code] of Object.entries(hj212Codes())) {
      const dev = this.o.sources[metric as Metric];
      const mine = rows.filter((r) => r.device === dev && r.metric === metric);
      if (!mine.length) continue;
      const valid = mine.filter((r) => r.mean !== null);
      const flag = mine.every((r) => r.flag === 'N' || r.flag === 'T') ? (mine.some((r) => r.flag === 'T') ? 'T' : 'N') : (mine.find((r) => r.flag !== 'N' && r.flag !== 'T')!.flag as Flag);
      const g: [string, string][] = [];
      if (valid.length) {
        g.push([`${code}-Avg`, hjNumber(valid.reduce((s, r) => s + r.mean!, 0) / valid.length, metric)]);
        g.push([`${code}-Min`, hjNumber(Math.min(...valid.map((r) => r.min!)), metric)]);
        g.push([`${code}-Max`, hjNumber(Math.max(...valid.map((r) => r.max!)), metric)]);
      }
      g.push([`${code}-Flag`, flag]);
      groups.push(g);
    }
    return groups.length > 1 ? groups : undefined;
  }

  private markAcked(u: Upload): void {
    this.o.queue.ack(u);
    // keep 40 days of the log of what was sent
    this.o.queue.prune(new Date(this.o.now() - 40 * 86_400_000).toISOString());
  }

  /** Unacknowledged periods, oldest first (what an outage left behind). */
  pending(): Upload[] {
    return this.o.queue.pending();
  }

  /** Send queued periods one by one while connected. */
  private async drain(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.linkUp && !this.stopped) {
        const u = this.o.queue.next();
        if (!u) break;
        const period = PERIOD_OF_CN[u.cn]!;
        const groups = this.periodGroups(period, u.start, period === 'minute' ? this.minIntervalMin : 1);
        if (!groups) {
          this.markAcked(u); // nothing stored for it (its device is not a source any more)
          continue;
        }
        const ok = await this.sendWithAck(u.cn, groups);
        if (!ok) break;
        this.markAcked(u);
        this.counters.acked++;
        this.emit('acked', u);
      }
    } catch (e) {
      // the store cannot be written (disk full): the periods stay queued; try again in a while
      this.o.logger.error({ err: (e as Error).message }, `HJ 212: ${(e as Error).message}; sending again in 10 s`);
      if (!this.stopped) setTimeout(() => void this.drain(), 10_000).unref();
    } finally {
      this.sending = false;
    }
  }

  private async sendWithAck(cn: string, groups: CpGroup[]): Promise<boolean> {
    const ack = this.o.cfg.ackRequired;
    const tries = this.o.tries ?? 3;
    for (let i = 0; i < tries; i++) {
      if (!this.linkUp) return false;
      const qn = this.newQn();
      const packets = buildPackets(this.head(qn, cn, ack), groups);
      const acked = ack ? new Promise<boolean>((resolve) => (this.waiting = { qn, resolve })) : Promise.resolve(true);
      for (const t of packets) this.write(t);
      this.counters.sent++;
      if (!ack) return true;
      const timer = new Promise<boolean>((r) => setTimeout(() => r(false), this.ackTimeoutMs));
      const got = await Promise.race([acked, timer]);
      this.waiting = undefined;
      if (got) return true;
      if (!this.linkUp) return false;
      this.counters.retries++;
    }
    this.o.logger.warn({ cn, tries }, 'HJ 212: no 9014 after every try; reconnecting');
    this.socket?.destroy();
    return false;
  }

  // ---------------------------------------------------------------- from the platform

  private onData(d: Buffer): void {
    this.rx = Buffer.concat([this.rx, d]);
    const { packets, rest } = splitStream(this.rx);
    this.rx = rest;
    for (const raw of packets) {
      let p: Hj212Packet;
      try {
        p = decodePacket(raw);
      } catch (e) {
        this.counters.badPackets++;
        this.o.logger.warn({ err: (e as Error).message }, 'HJ 212: bad packet from the platform');
        continue;
      }
      const cn = field(p, 'CN');
      const qn = field(p, 'QN') ?? '';
      if (cn === CN.dataAck) {
        if (this.waiting && this.waiting.qn === qn) this.waiting.resolve(true);
        continue;
      }
      this.counters.requests++;
      this.onRequest(cn ?? '', qn, p);
    }
  }

  private answer(qn: string, cn: string, cp: CpGroup[] = []): void {
    this.write(reply({ qn, st: '91', cn, pw: this.o.cfg.pw, mn: this.o.mn, cp }));
  }

  private onRequest(cn: string, qn: string, p: Hj212Packet): void {
    const known = [CN.getTime, CN.setTime, CN.getRtdInterval, CN.setRtdInterval, CN.getMinInterval, CN.setMinInterval, CN.rtd, CN.stopRtd, CN.minute, CN.hour, CN.day] as string[];
    if (!known.includes(cn)) {
      this.answer(qn, CN.qnRtn, [[['QnRtn', '2']]]); // refused: unknown command
      return;
    }
    this.answer(qn, CN.qnRtn, [[['QnRtn', '1']]]);
    let exe = '1';
    const send = (rcn: string, cp: CpGroup[]) => {
      for (const t of buildPackets(this.head(qn, rcn, false), cp)) this.write(t);
    };
    switch (cn) {
      case CN.getTime:
        send(CN.getTime, [[['SystemTime', hjTime(this.o.now(), this.o.timeZone)]]]);
        break;
      case CN.setTime: {
        // the gateway's own timestamps follow the platform while NTP has not set the clock (the
        // system clock itself is the OS's); with NTP in charge the platform's time is refused
        const t = cpValue(p, 'SystemTime');
        if (!this.o.setTime || this.o.clockSynced?.() === true) exe = '100';
        else if (!t) exe = '3';
        else
          try {
            this.o.setTime(parseHjTime(t, this.o.timeZone));
          } catch {
            exe = '3';
          }
        break;
      }
      case CN.getRtdInterval:
        send(CN.getRtdInterval, [[['RtdInterval', String(this.rtdIntervalS)]]]);
        break;
      case CN.setRtdInterval: {
        const v = Number(cpValue(p, 'RtdInterval'));
        if (Number.isInteger(v) && v >= 1 && v <= 86_400) this.rtdIntervalS = v;
        else exe = '3';
        break;
      }
      case CN.getMinInterval:
        send(CN.getMinInterval, [[['MinInterval', String(this.minIntervalMin)]]]);
        break;
      case CN.setMinInterval: {
        const v = Number(cpValue(p, 'MinInterval'));
        if (Number.isInteger(v) && v >= 1 && v <= 60) this.minIntervalMin = v;
        else exe = '3';
        break;
      }
      case CN.rtd:
        this.rtdOn = true;
        this.nextRtd = 0;
        break;
      case CN.stopRtd:
        this.rtdOn = false;
        break;
      default: {
        // back-fill: every stored period with a start in [BeginTime, EndTime]
        const period = PERIOD_OF_CN[cn]!;
        try {
          const from = parseHjTime(cpValue(p, 'BeginTime') ?? '', this.o.timeZone);
          const to = parseHjTime(cpValue(p, 'EndTime') ?? '', this.o.timeZone);
          const starts = [...new Set(this.o.aggregates.range(period, new Date(from).toISOString(), new Date(to).toISOString()).map((r) => r.start))];
          for (const s of starts) {
            const groups = this.periodGroups(period, s);
            if (groups) send(cn, groups);
          }
        } catch {
          exe = '3';
        }
      }
    }
    this.answer(qn, CN.exeRtn, [[['ExeRtn', exe]]]);
  }
}
