/**
 * The Firmata board end to end: the simulator's virtual Arduino (mock-firmata, driven through
 * johnny-five by the gateway's firmata bus), the gateway, aedes and a subscriber, in real time.
 * Everything is read where it happens: pin writes on the board, events at the subscriber.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig, ConfigError } from '../../gateway/config/load.js';
import { BOARD_LED, BOARD_PINS, type InProcessRig, IO_LAYOUT, JUNE_10AM, sleep, startInProcess } from '../helpers/gateway-rig.js';
import { waitFor } from '../helpers/system.js';
import type { VirtualBoard } from '../../simulator/virtual-board.js';

let rig: InProcessRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

const GATE = IO_LAYOUT.firmata.gateCamera;
const pinOf = (ch: number) => BOARD_PINS[ch - 1]!.pin;

async function start(): Promise<{ r: InProcessRig; board: VirtualBoard }> {
  rig = await startInProcess('dust-event', { io: 'firmata', factor: 1, startMs: JUNE_10AM });
  const r = rig;
  await waitFor(() => r.gw.devices.get('board')!.status === 'online', 5000);
  return { r, board: r.sim.board('board')! };
}

/** Real ms between successive writes to the status light since `sinceMs`, and the values written. */
function lightWrites(board: VirtualBoard, sinceMs: number) {
  const w = board.pinLog.filter((x) => x.pin === BOARD_LED && x.realMs >= sinceMs);
  const gaps = w.slice(1).map((x, i) => x.realMs - w[i]!.realMs);
  const sorted = [...gaps].sort((a, b) => a - b);
  return { writes: w, values: w.map((x) => x.value), median: sorted[Math.floor(sorted.length / 2)] ?? NaN };
}

/** Watch the light for `ms`; returns what it did. */
async function watchLight(board: VirtualBoard, ms: number) {
  const t0 = performance.now();
  await sleep(ms);
  return lightWrites(board, t0);
}

describe('firmata-io inputs', () => {
  it('a button press gives one video_trigger per press, debounced, with the press time; a glitch gives none', async () => {
    const { r, board } = await start();
    // a press with 3 contact bounces at each edge, held 200 ms
    const t1 = r.now();
    await board.press(GATE, 200, 3);
    await sleep(150);
    // a glitch shorter than the 50 ms debounce
    await board.press(GATE, 15, 0);
    await sleep(150);
    // a second press, with 5 bounces
    const t2 = r.now();
    await board.press(GATE, 120, 5);
    await waitFor(() => r.sub.events('video_trigger').length >= 2, 5000);
    await sleep(400);
    const video = r.sub.events('video_trigger');
    expect(video).toHaveLength(2);
    expect(video.map((e) => e.input)).toEqual(['gateCamera', 'gateCamera']);
    // the press time is the first edge of each press, not when the debounce accepted it
    const at = video.map((e) => Date.parse(e.edgeAt as string));
    expect(Math.abs(at[0]! - t1)).toBeLessThan(25);
    expect(Math.abs(at[1]! - t2)).toBeLessThan(25);
    // and the telemetry holds the press as a reading of channel 4 at that time
    await waitFor(() => r.sub.readings('board').some((x) => Date.parse(x.ts as string) === at[0]), 5000);
    const press = r.sub.readings('board').find((x) => Date.parse(x.ts as string) === at[0])!;
    expect((press.values as Record<string, number>)[`ch${GATE}`]).toBe(1);
    // the button pulls pin 2 to ground: pull-up configured, the press read LOW
    expect(board.level(pinOf(GATE))).toBe(1);
  });
});

describe('firmata-io outputs and connection', () => {
  it('drives relay pins with their polarity; unplugging marks the board offline with an event; replugging restores what the rules want', async () => {
    const { r, board } = await start();
    // start-up: every relay open (NO pins LOW, the NC camera pin HIGH)
    const first = (pin: number) => board.pinLog.find((w) => w.pin === pin)?.value;
    expect([first(7), first(8), first(9)]).toEqual([0, 0, 1]);
    // a dust alarm: sprinkler on (pin 7 HIGH), camera pulsed (pin 9 LOW, then HIGH)
    r.sim.setValues('head', { pm10: 400 });
    await waitFor(() => r.relays.overrides.ch1 === 1, 10_000);
    /** The levels pin 9 went through (repeated writes of one level collapsed). */
    const camLevels = () => board.pinLog.filter((w) => w.pin === 9).map((w) => w.value).filter((v, i, a) => i === 0 || v !== a[i - 1]);
    await waitFor(() => camLevels().length >= 3, 5000);
    expect(camLevels().slice(0, 3)).toEqual([1, 0, 1]);
    expect(board.level(7)).toBe(1);
    expect(r.gw.outputs.actual.sprinkler).toBe('on');

    // pull the cable
    const unpluggedAt = r.now();
    await r.sim.unplug('io');
    await waitFor(() => r.sub.events('device_status').some((e) => e.device === 'board' && e.status === 'offline'), 3000);
    const offline = r.sub.events('device_status').find((e) => e.device === 'board' && e.status === 'offline')!;
    expect(Date.parse(offline.ts as string) - unpluggedAt).toBeLessThan(500); // at once, not after missed polls
    await waitFor(() => (r.sub.on('state').at(-1)?.payload.devices as Record<string, string>)?.board === 'offline', 3000);
    expect(r.relays.overrides.ch1).toBe(0); // the board lost power: its relays dropped out
    await sleep(1000);
    expect(board.stats.refused).toBeGreaterThan(0); // the gateway keeps looking for it

    // plug it back: online again, the sprinkler the alarm still wants is switched back on
    r.sim.replug('io');
    await waitFor(() => r.sub.events('device_status').some((e) => e.device === 'board' && e.status === 'online' && Date.parse(e.ts as string) > unpluggedAt), 5000);
    await waitFor(() => r.relays.overrides.ch1 === 1, 5000);
    expect(board.stats.connects).toBe(2);
    expect(board.level(7)).toBe(1);
    expect(board.level(9)).toBe(1); // the camera stays open (its pulse is over)
    await waitFor(() => r.gw.outputs.actual.sprinkler === 'on', 5000);
    // the gateway stops: everything off, the light too
    await r.gw.stop('shutdown');
    expect(board.level(7)).toBe(0);
    expect(board.level(BOARD_LED)).toBe(0);
  });
});

describe('firmata-io across a config change', () => {
  it('a new config takes the open board over: no reset, no relay dropping out, inputs still reported', async () => {
    const { r, board } = await start();
    r.sim.setValues('head', { pm10: 400 });
    await waitFor(() => r.relays.overrides.ch1 === 1, 10_000);
    const logBefore = r.relays.coilLog.length;
    // a remote threshold change, and one that adds a pin to the board (its bus is unchanged)
    const res = await r.gw.applyConfig({ patch: { rules: { dustAlarm: { pm10: { warn: 140 } } } } });
    expect(res).toMatchObject({ ok: true });
    const pins = [...BOARD_PINS, { pin: 4, mode: 'input' }];
    const res2 = await r.gw.applyConfig({ patch: { devices: (r.gw.loaded.raw as { devices: { id: string }[] }).devices.map((d) => (d.id === 'board' ? { ...d, pins } : d)) } });
    expect(res2, JSON.stringify(res2.errors)).toMatchObject({ ok: true });
    await sleep(500);
    expect(board.stats.connects).toBe(1); // never reopened
    expect(r.relays.coilLog.slice(logBefore).filter((c) => c.channel === 1)).toEqual([]); // the sprinkler never dropped out
    expect(r.relays.overrides.ch1).toBe(1);
    expect(r.gw.devices.get('board')!.status).toBe('online');
    // the new device hears the gate contact
    await board.press(GATE, 120, 2);
    await waitFor(() => r.sub.events('video_trigger').length === 1, 5000);
    await sleep(300);
    expect(r.sub.events('video_trigger')).toHaveLength(1);
    // and the light is still driven (a dust alarm: fast blink)
    const seen = await watchLight(board, 800);
    expect(seen.writes.length).toBeGreaterThanOrEqual(4);
  });
});

describe('status light', () => {
  it('steady when healthy, slow blink while a device is offline or the broker is down, fast blink during a dust alarm, off at stop', async () => {
    const { r, board } = await start();
    await waitFor(() => board.level(BOARD_LED) === 1, 3000);
    // healthy: on, and no blinking
    let seen = await watchLight(board, 1200);
    expect(seen.writes.length).toBeLessThanOrEqual(1);
    expect(board.level(BOARD_LED)).toBe(1);
    expect(r.gw.apiState().light).toBe('on'); // what the status page shows

    // a sensor stops answering: slow blink (500 ms on, 500 ms off)
    r.sim.setFaults('head', ['timeout']);
    await waitFor(() => r.gw.devices.get('head')!.status === 'offline', 10_000);
    seen = await watchLight(board, 2600);
    expect(seen.writes.length).toBeGreaterThanOrEqual(4);
    expect(seen.median).toBeGreaterThan(400);
    expect(seen.median).toBeLessThan(650);
    expect(new Set(seen.values)).toEqual(new Set([0, 1]));
    expect(r.gw.apiState().light).toBe('slow');

    // it answers again: steady
    r.sim.setFaults('head', []);
    await waitFor(() => r.gw.devices.get('head')!.status === 'online', 10_000);
    await sleep(300);
    seen = await watchLight(board, 1200);
    expect(seen.writes.length).toBeLessThanOrEqual(1);
    expect(board.level(BOARD_LED)).toBe(1);

    // the broker goes away: slow blink
    await r.broker.stop();
    await waitFor(() => !r.gw.uplink!.connected, 5000);
    await sleep(300);
    seen = await watchLight(board, 2600);
    expect(seen.median).toBeGreaterThan(400);
    expect(seen.median).toBeLessThan(650);

    // a dust alarm: fast blink (100 ms), which wins over the broker being down
    r.sim.setValues('head', { pm10: 400 });
    await waitFor(() => Object.values(r.gw.state().alarms).some((a) => a !== 'none'), 10_000);
    await sleep(300);
    seen = await watchLight(board, 1500);
    expect(seen.writes.length).toBeGreaterThanOrEqual(8);
    expect(seen.median).toBeGreaterThan(60);
    expect(seen.median).toBeLessThan(160);
    expect(r.gw.apiState().light).toBe('fast');

    // stop: off, and it stays off
    await r.gw.stop('shutdown');
    expect(board.level(BOARD_LED)).toBe(0);
    seen = await watchLight(board, 500);
    expect(seen.writes).toHaveLength(0);
  });
});

describe('firmata config', () => {
  const base = (devices: unknown[], extra: Record<string, unknown> = {}) => ({
    gateway: { id: 'test-site-0001' },
    buses: [
      { id: 'io', type: 'firmata', path: '/dev/ttyACM0' },
      { id: 'line1', type: 'rtu', path: '/dev/ttyUSB0' },
    ],
    devices,
    ...extra,
  });
  const board = { id: 'board', bus: 'io', driver: 'firmata-io', pins: BOARD_PINS, statusLed: 13 };
  const issues = (raw: unknown) => {
    try {
      resolveConfig(raw);
      return [];
    } catch (e) {
      if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
      throw e;
    }
  };

  it('accepts a board whose relay and input pins are the outputs and inputs', () => {
    expect(
      issues(base([board], { outputs: { sprinkler: { device: 'board', channel: 1, kind: 'road' } }, inputs: { gate: { device: 'board', channel: 4, kind: 'video-trigger' } } })),
    ).toEqual([]);
  });

  it('refuses what cannot work, naming the path', () => {
    expect(issues(base([{ ...board, bus: 'line1' }]))).toEqual(['devices[0].bus: firmata-io drives a board running StandardFirmata: put it on a bus of type firmata, not rtu']);
    expect(issues(base([{ id: 'relays', bus: 'io', driver: 'waveshare-relay-8ch' }]))).toEqual([
      'devices[0].bus: bus io is a firmata bus: only a firmata-io device can sit on it (this is waveshare-relay-8ch)',
    ]);
    expect(issues(base([board], { outputs: { sprinkler: { device: 'board', channel: 4, kind: 'road' } } }))).toEqual([
      'outputs.sprinkler.channel: channel 4 of board is an input pin; its relay outputs are channels 1, 2, 3',
    ]);
    expect(issues(base([board], { inputs: { gate: { device: 'board', channel: 9, kind: 'video-trigger' } } }))).toEqual([
      'inputs.gate.channel: channel 9 of board is not configured; its digital inputs are channels 4, 5',
    ]);
    expect(issues(base([{ ...board, pins: [{ pin: 7, mode: 'relay' }, { pin: 7, mode: 'input' }], statusLed: 7 }]))).toEqual([
      'devices[0].pins[1].pin: pin 7 is already used by pins[0]',
      'devices[0].statusLed: pin 7 is already used by pins[0]',
    ]);
    expect(issues(base([{ ...board, pins: [{ pin: 7, mode: 'relay', pullup: true }] }]))).toEqual(['devices[0].pins[0]: pullup/activeLow are for input pins; a relay takes type NO | NC']);
    expect(issues(base([{ ...board, pins: [{ pin: 7, mode: 'valve' }] }]))).toEqual(['devices[0].pins[0].mode: expected one of relay | input, got "valve"']);
    expect(issues(base([board, { ...board, id: 'board2' }]))).toEqual(['devices[1].bus: bus io already has its board (devices[0]); one firmata-io device per firmata bus']);
    expect(issues(base([{ id: 'head', bus: 'line1', driver: 'cwt-weather-station', pins: BOARD_PINS }]))).toEqual([
      'devices[0]: pins/statusLed are for driver firmata-io only (this is cwt-weather-station)',
    ]);
  });
});
