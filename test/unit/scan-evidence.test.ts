/** The scan's weighing of evidence, case by case (the wire side is in test/integration/scan.test.ts). */
import { describe, expect, it } from 'vitest';
import { decide, type Evidence } from '../../gateway/scan.js';

const reg = (fn: 1 | 2 | 3 | 4, address: number, count: number, strict: boolean) => ({ fn, address, count, strict });

describe('scan evidence', () => {
  it('one holding register at 0x0000 on a strict device: a noise meter at 55 dB and an anemometer at 5.5 m/s read alike, so both are listed', () => {
    const ev: Evidence[] = [
      { driver: 'noise-transmitter', reads: [reg(3, 0, 1, true)], values: { noise: 55 } },
      { driver: 'renke-wind-speed', reads: [reg(3, 0, 1, true)], values: { windSpeed: 5.5 } },
      { driver: 'dust-transmitter', excluded: 'FC03@0x0000: exception 2', reads: [reg(3, 0, 3, true)], values: {} },
    ];
    expect(decide(ev)).toMatchObject({ candidates: ['noise-transmitter', 'renke-wind-speed'] });
  });

  it('a value outside the usual range counts against a candidate: 5.5 dB is no sound level, 5.5 m/s is wind', () => {
    const ev: Evidence[] = [
      { driver: 'noise-transmitter', reads: [reg(3, 0, 1, true)], values: { noise: 5.5 } },
      { driver: 'renke-wind-speed', reads: [reg(3, 0, 1, true)], values: { windSpeed: 0.55 } },
    ];
    expect(decide(ev).driver).toBe('renke-wind-speed');
  });

  it('a strict device that answers a larger map is not the smaller one (it would have refused the extra registers)', () => {
    const ev: Evidence[] = [
      { driver: 'dust-transmitter', reads: [reg(3, 0, 3, true)], values: { pm25: 0, pm10: 0, tsp: 0 } },
      { driver: 'renke-wind-speed', reads: [reg(3, 0, 1, true)], values: { windSpeed: 0 } },
      { driver: 'noise-transmitter', reads: [reg(3, 0, 1, true)], values: { noise: 0 } },
    ];
    expect(decide(ev).driver).toBe('dust-transmitter');
  });

  it('on a device that answers any address, answering proves nothing: all zeros is no evidence, and a broken relation excludes', () => {
    const zeros: Evidence[] = [
      { driver: 'dust-transmitter', reads: [reg(3, 0, 3, false)], values: { pm25: 0, pm10: 0, tsp: 0 } },
      { driver: 'xy-md02', reads: [reg(4, 1, 2, false)], values: { temperature: 0, humidity: 0 } },
    ];
    expect(decide(zeros)).toEqual({});
    // PM10 above TSP: no dust transmitter answers that; the same words as a wind vane's sector 9 are out of range too
    const bad: Evidence[] = [
      { driver: 'dust-transmitter', reads: [reg(3, 0, 3, false)], values: { pm25: 9, pm10: 300, tsp: 100 } },
      { driver: 'renke-wind-direction', reads: [reg(3, 0, 2, false)], values: { windSector: 9, windDirection: 300 } },
    ];
    expect(decide(bad)).toEqual({});
  });

  it('the weather head wins on live values and its wind level agreeing with its speed; a level that disagrees excludes it', () => {
    const head = (windLevel: number): Evidence => ({
      driver: 'cwt-weather-station',
      reads: [reg(3, 0x1f4, 10, false)],
      values: { windSpeed: 3.41, windLevel, windDirection: 271, humidity: 45.5, temperature: -3.5, noise: 62.3, pm25: 35, pm10: 180, pressure: 100.8 },
    });
    const other: Evidence = { driver: 'renke-wind-speed', reads: [reg(3, 0, 1, false)], values: { windSpeed: 0 } };
    expect(decide([head(3), other])).toMatchObject({ driver: 'cwt-weather-station', why: ['wind level agrees with wind speed', 'PM2.5 ≤ PM10'] });
    expect(decide([head(7), other])).toEqual({});
  });
});
