/** The operators' metrics (`GET /metrics`, SPEC §11): prom-client, loaded on the first scrape (gateway/http.ts). Every value is read at scrape time. */
import { Counter, Gauge, Registry } from 'prom-client';
import type { GatewayDevice } from '../drivers/device.js';
import type { PageHost } from './page-host.js';
import { VERSION } from './version.js';

/** Device counters as Prometheus counters, read at scrape time. */
function deviceMetrics(gw: PageHost, registry: Registry): void {
  const counter = (name: string, help: string, pick: (c: GatewayDevice) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['device'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [id, d] of gw.devices) this.inc({ device: id }, pick(d as never));
      },
    });
  counter('dustgate_device_requests_total', 'Requests sent to the device', (d) => d.counters.requests);
  counter('dustgate_device_ok_total', 'Requests the device answered correctly', (d) => d.counters.ok);
  counter('dustgate_device_timeouts_total', 'Requests without an answer in time', (d) => d.counters.timeouts);
  counter('dustgate_device_crc_errors_total', 'Answers with a wrong CRC or checksum', (d) => d.counters.crcErrors);
  counter('dustgate_device_exceptions_total', 'Modbus exception answers', (d) => d.counters.exceptions);
  counter('dustgate_device_garbage_total', 'Replies that were no answer to the request (noise, wrong unit, wrong transaction, wrong function)', (d) => d.counters.garbage);
  counter('dustgate_device_short_frames_total', 'Replies cut short (then silence)', (d) => d.counters.shortFrames);
  new Gauge({
    name: 'dustgate_device_up',
    help: '1 while the device answers, 0 when offline',
    labelNames: ['device'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [id, d] of gw.devices) this.set({ device: id }, d.status === 'online' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'dustgate_device_rtt_seconds',
    help: 'Round-trip time of the last good request',
    labelNames: ['device'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [id, d] of gw.devices) if (d.counters.lastRttMs !== null) this.set({ device: id }, d.counters.lastRttMs / 1000);
    },
  });
}

export function createRegistry(gw: PageHost): Registry {
  const registry = new Registry();
  deviceMetrics(gw, registry);
  new Gauge({
    name: 'dustgate_buffer_records',
    help: 'Records waiting in the buffer for the broker',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const s = gw.view.bufferStats();
      this.set({ kind: 'telemetry' }, s.telemetry);
      this.set({ kind: 'event' }, s.events);
      this.set({ kind: 'aggregate' }, s.aggregates ?? 0);
    },
  });
  new Gauge({
    name: 'dustgate_buffer_oldest_age_seconds',
    help: 'Age of the oldest record in the buffer (0 when empty)',
    registers: [registry],
    collect() {
      this.set(gw.view.bufferStats().oldestAgeS ?? 0);
    },
  });
  new Gauge({
    name: 'dustgate_buffer_bytes',
    help: 'Bytes held in the buffer, against storage.maxMB',
    registers: [registry],
    collect() {
      this.set(gw.view.bufferStats().bytes);
    },
  });
  new Counter({
    name: 'dustgate_buffer_evicted_total',
    help: 'Records evicted because the buffer was full',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ kind: 'telemetry' }, gw.store.evicted.telemetry);
      this.inc({ kind: 'event' }, gw.store.evicted.events);
    },
  });
  new Gauge({
    name: 'dustgate_storage_ok',
    help: '1 while the buffer takes writes, 0 while the store fails (disk full, I/O error): polling and rules go on',
    registers: [registry],
    collect() {
      this.set(gw.storage.ok ? 1 : 0);
    },
  });
  new Counter({
    name: 'dustgate_storage_dropped_total',
    help: 'Readings and events not stored because the store failed',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ kind: 'telemetry' }, gw.storage.totals.droppedTelemetry);
      this.inc({ kind: 'event' }, gw.storage.totals.droppedEvents);
    },
  });
  new Counter({
    name: 'dustgate_remote_refused_busy_total',
    help: 'Remote messages refused by the rate limit or a full queue (each was answered)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(gw.remote?.counters.refusedBusy ?? 0);
    },
  });
  new Counter({
    name: 'dustgate_readings_total',
    help: 'Readings stored since start',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(gw.counters.readings);
    },
  });
  new Counter({
    name: 'dustgate_events_total',
    help: 'Events stored since start',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(gw.counters.events);
    },
  });
  new Gauge({
    name: 'dustgate_link_up',
    help: '1 while the uplink is connected',
    labelNames: ['link'],
    registers: [registry],
    collect() {
      this.reset();
      if (gw.uplink) this.set({ link: 'mqtt' }, gw.uplink.connected ? 1 : 0);
      for (const p of gw.hj212) this.set({ link: p.name }, p.isConnected ? 1 : 0);
    },
  });
  new Gauge({
    name: 'dustgate_output_on',
    help: '1 when the output is on as read back from the device',
    labelNames: ['output'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, state] of Object.entries(gw.outputs.actual)) if (state !== 'unknown') this.set({ output: name }, state === 'on' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'dustgate_info',
    help: 'Gateway version and config version',
    labelNames: ['gateway', 'version'],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ gateway: gw.id, version: VERSION }, gw.version);
    },
  });
  return registry;
}
