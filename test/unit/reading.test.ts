/** Per-metric flags and the choice of the device each rule metric comes from. */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../gateway/config/load.js';
import { resolveSources } from '../../gateway/gateway.js';
import { commFailure, flagValues, usable } from '../../gateway/reading.js';

describe('flags', () => {
  it('N inside the measurement range, T outside it, D when the sensor cannot mean it', () => {
    expect(flagValues({ pm10: 80, temperature: -5, humidity: 62.6, windSpeed: 3.4 })).toEqual({ pm10: 'N', temperature: 'N', humidity: 'N', windSpeed: 'N' });
    expect(flagValues({ pm10: 1000, pm25: 1000.5 })).toEqual({ pm10: 'N', pm25: 'T' });
    expect(flagValues({ temperature: 85, noise: 25 })).toEqual({ temperature: 'T', noise: 'T' });
    expect(flagValues({ humidity: 100.1, pm10: -1, windDirection: 361, temperature: Number.NaN })).toEqual({ humidity: 'D', pm10: 'D', windDirection: 'D', temperature: 'D' });
    // a device's own range narrows or widens T
    expect(flagValues({ pm10: 600 }, { pm10: [0, 500] })).toEqual({ pm10: 'T' });
    expect(flagValues({ pm10: 1500 }, { pm10: [0, 2000] })).toEqual({ pm10: 'N' });
    // metrics without a known range (channels, co2) are normal
    expect(flagValues({ ch1: 1, co2: 412 })).toEqual({ ch1: 'N', co2: 'N' });
  });
  it('a failed poll is a reading with no values and B for every metric; rules use N and T only', () => {
    expect(commFailure('head', 5, ['pm10', 'temperature'])).toEqual({ device: 'head', ts: 5, values: {}, flags: { pm10: 'B', temperature: 'B' } });
    expect(['N', 'T', 'D', 'B', 'M', 'C', undefined].map((f) => usable(f as never))).toEqual([true, true, false, false, false, false, false]);
  });
});

describe('sources', () => {
  const cfg = (sources?: Record<string, string>) =>
    resolveConfig({
      gateway: { id: 'src-test' },
      buses: [{ id: 'l', type: 'tcp', host: '127.0.0.1', port: 502 }],
      devices: [
        { id: 'th', bus: 'l', unit: 1, driver: 'xy-md02' },
        { id: 'head', bus: 'l', unit: 2, driver: 'cwt-weather-station' },
        { id: 'dust', bus: 'l', unit: 3, driver: 'dust-transmitter' },
      ],
      ...(sources ? { sources } : {}),
    }).config;
  it('default: the first device (in config order) that measures the metric', () => {
    expect(resolveSources(cfg())).toMatchObject({ temperature: 'th', humidity: 'th', windSpeed: 'head', pm10: 'head', tsp: 'dust', noise: 'head' });
  });
  it('the sources section wins', () => {
    expect(resolveSources(cfg({ temperature: 'head', pm10: 'dust' }))).toMatchObject({ temperature: 'head', pm10: 'dust', pm25: 'head' });
  });
});
