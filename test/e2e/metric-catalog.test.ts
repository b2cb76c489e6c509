/**
 * Adding a metric is one catalog entry: ozone (HJ 212 a05024) is defined through `defineMetric`
 * alone, and the config accepts it as a rule source, range checks flag it, the store keeps it, the
 * aggregates average it and it goes out on MQTT and to an HJ 212 platform — with no other file changed.
 *
 * Everything the gateway is made of is imported after the metric is defined (dynamic imports):
 * a site's build would put the row in gateway/metrics.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { defineMetric, isMetric } from '../../gateway/metrics.js';

const cst = (iso: string) => Date.parse(`${iso}+08:00`);
const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const s of stops.reverse()) await s();
});

describe('the metric catalog', () => {
  it('a metric added through the catalog alone is validated in config, flagged, stored, aggregated and published', async () => {
    const { resolveConfig } = await import('../../gateway/config/load.js');
    const base = { gateway: { id: 'catalog-test' }, buses: [{ id: 'b', type: 'tcp', host: '127.0.0.1', port: 502 }], devices: [{ id: 'oz', bus: 'b', unit: 1, driver: 'generic-modbus', registers: [{ metric: 'o3', address: 0 }] }] };
    // before the entry: not a metric, so not a source
    expect(isMetric('o3')).toBe(false);
    expect(() => resolveConfig({ ...base, sources: { o3: 'oz' } })).toThrow(/sources\.o3.*expected one of pm25 \| pm10/);

    defineMetric({ name: 'o3', unit: 'µg/m³', physical: [0, 10_000], range: [0, 500], decimals: 0, hj212: 'a05024', validity: { minute: 1, hour: 45, day: 20 } });

    // validated in config: a source now; another unknown name still refused with the list, which names o3
    expect(resolveConfig({ ...base, sources: { o3: 'oz' } }).config.sources).toEqual({ o3: 'oz' });
    expect(() => resolveConfig({ ...base, sources: { o4: 'oz' } })).toThrow(/sources\.o4.*\| o3, got "o4"/);

    // flagged by the catalog's range (500): over it is T, a negative is a device fault D
    const { flagValues } = await import('../../gateway/reading.js');
    expect(flagValues({ o3: 120, x: 1 })).toEqual({ o3: 'N', x: 'N' });
    expect(flagValues({ o3: 620 })).toEqual({ o3: 'T' });
    expect(flagValues({ o3: -3 })).toEqual({ o3: 'D' });

    // through the gateway: an ozone sensor on the bus (a generic Modbus device, unit 9, o3 in register 0)
    const { Hj212Platform } = await import('../../gateway/hj212/platform.js');
    const { cpValue } = await import('../../gateway/hj212/codec.js');
    const { freePort, waitFor } = await import('../helpers/system.js');
    const { startInProcess } = await import('../helpers/gateway-rig.js');
    const port = await freePort();
    const platform = new Hj212Platform({ port, timeZone: 'Asia/Shanghai' });
    await platform.start();
    stops.push(() => platform.stop());
    const rig = await startInProcess('dust-event', {
      factor: 60,
      startMs: cst('2026-06-01T10:00:30'),
      moreSimDevices: [{ id: 'ozone', driver: 'generic-modbus', unit: 9, registers: [{ metric: 'o3', address: 0 }], values: { o3: 137 } }],
      moreDevices: [{ id: 'ozone', bus: 'main', unit: 9, driver: 'generic-modbus', pollMs: 100, registers: [{ metric: 'o3', address: 0 }] }],
      extra: {
        sources: { o3: 'ozone' },
        hj212: { enabled: true, host: '127.0.0.1', port, st: 39, pw: '123456', mn: 'ZZ0412DUST0001', rtdIntervalS: 60, minIntervalMin: 1, ackRequired: true },
      },
    });
    stops.push(() => rig.stop());
    await waitFor(() => rig.sub.on('aggregates').some((m) => m.payload.device === 'ozone' && m.payload.period === 'minute'), 30_000, 100);

    // published on MQTT with its unit's flag
    const r = rig.sub.readings('ozone').find((x) => (x.values as Record<string, number>).o3 === 137)!;
    expect(r).toBeDefined();
    expect(r.flags).toEqual({ o3: 'N' });
    // aggregated (stored and published)
    const agg = rig.sub.on('aggregates').find((m) => m.payload.device === 'ozone' && m.payload.period === 'minute')!.payload as { seq: number; gateway: string; metrics: Record<string, { mean: number; valid: boolean }> };
    expect(agg.metrics.o3).toMatchObject({ valid: true, mean: 137 });
    expect(agg.gateway).toBe('test-site-0001');
    expect(agg.seq).toBeGreaterThan(0); // through the record buffer, like readings
    const rows = rig.gw.store.aggs.range('minute', '2026-06-01T00:00:00.000Z', '2026-06-02T00:00:00.000Z', 'ozone');
    expect(rows.some((x) => x.metric === 'o3' && x.mean !== null)).toBe(true);
    // sent to the HJ 212 platform under its code, in real time and as the minute's average
    await waitFor(() => platform.received.some((x) => x.cn === '2051' && cpValue(x.packet, 'a05024-Avg') !== undefined), 30_000, 100);
    await waitFor(() => platform.received.some((x) => x.cn === '2011' && cpValue(x.packet, 'a05024-Rtd') !== undefined), 30_000, 100);
    const rtd = platform.received.find((x) => x.cn === '2011' && cpValue(x.packet, 'a05024-Rtd') !== undefined)!;
    expect(cpValue(rtd.packet, 'a05024-Rtd')).toBe('137');
    expect(cpValue(rtd.packet, 'a05024-Flag')).toBe('N');
    // stored: with the broker gone, the readings stay in the buffer, o3 and all
    await rig.broker.stop();
    const held = (kind: string) => [...rig.gw.store.iterate()].filter((x) => x.kind === kind && x.body.includes('"ozone"'));
    await waitFor(() => held('telemetry').length >= 3, 10_000, 100);
    const stored = held('telemetry');
    expect(JSON.parse(stored.at(-1)!.body)).toMatchObject({ values: { o3: 137 }, flags: { o3: 'N' } });
    // and the next closed minute waits in the buffer for the broker too
    await waitFor(() => held('aggregate').length > 0, 10_000, 100);
    expect(JSON.parse(held('aggregate')[0]!.body)).toMatchObject({ period: 'minute', device: 'ozone', metrics: { o3: { mean: 137, valid: true } } });
  });
});
