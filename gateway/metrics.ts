/** The metric names and units fixed by SPEC §3 (pm µg/m³, temperature °C, humidity %RH, pressure kPa, wind m/s and degrees, noise dB(A)). */
export const METRICS = ['pm25', 'pm10', 'tsp', 'pm1', 'temperature', 'humidity', 'pressure', 'windSpeed', 'windDirection', 'noise'] as const;
export type Metric = (typeof METRICS)[number];
