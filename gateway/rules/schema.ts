/**
 * The shape of the `rules:` section (SPEC §6) and of the alert profiles. It lives with the rules;
 * the site config's schema (config/schema.ts) takes it from here.
 */
import { z } from 'zod';
import { hhmm, mmdd, numIn, oneOf, posNum, show, str } from '../zod-fields.js';

export const ALERT_LEVELS = ['none', 'blue', 'yellow', 'orange', 'red'] as const;
export type AlertLevel = (typeof ALERT_LEVELS)[number];

// ------------------------------------------------------------------ rules (SPEC §6)

const levels = z.strictObject({ warn: posNum(), severe: posNum(), clear: posNum() });
/** Site file only: this section may be looser than the regulation's floor (see config/floors.ts). */
const allowBelowRegulation = z.boolean({ error: (iss) => `expected true or false, got ${show(iss.input)}` }).optional();
export const RulesSchema = z.strictObject({
  sprinkling: z.strictObject({ minTempC: numIn(-50, 50, false), greenbeltMinTempC: numIn(-50, 50, false), tempMaxAgeS: numIn(1, 86_400), allowBelowRegulation }),
  sweeping: z.strictObject({ stopAtBeaufort: numIn(1, 12), windAverageS: numIn(1, 3600), resumeAfterS: numIn(0, 86_400), allowBelowRegulation }),
  dustAlarm: z.strictObject({
    averageS: numIn(1, 86_400),
    pm10: levels,
    pm25: levels,
    tsp: levels,
    /** `spray` (every sprinkler output) and/or names of pulse outputs. */
    onWarn: z.array(str('spray or an output name')).max(16, 'expected at most 16 entries'),
    sprayS: numIn(1, 86_400),
    sprayRestS: numIn(0, 86_400),
  }),
  noise: z.strictObject({
    dayLimit: posNum(200),
    nightLimit: posNum(200),
    nightStart: hhmm,
    nightEnd: hhmm,
    averageS: numIn(1, 86_400),
    clearBelowDb: posNum(100),
  }),
  earthworkBan: z.strictObject({
    periods: z.array(z.strictObject({ from: mmdd, to: mmdd })).max(64, 'expected at most 64 periods'),
    alertLevels: z.array(oneOf(ALERT_LEVELS)).max(ALERT_LEVELS.length, `expected at most ${ALERT_LEVELS.length} levels`),
    allowBelowRegulation,
  }),
  outputs: z.strictObject({ maxOnS: numIn(1, 86_400), minOffS: numIn(0, 86_400) }),
  alertProfiles: z.partialRecord(oneOf(ALERT_LEVELS), z.unknown()).default({}),
});
export type Rules = z.infer<typeof RulesSchema>;
export type AlarmLevels = z.infer<typeof levels>;

/** Every key optional, all the way down (overrides of the preset, alert profiles). */
export function deepPartial(s: z.ZodType): z.ZodType {
  if (s instanceof z.ZodObject) {
    const shape = Object.fromEntries(Object.entries(s.shape as Record<string, z.ZodType>).map(([k, v]) => [k, deepPartial(v).optional()]));
    return z.strictObject(shape);
  }
  if (s instanceof z.ZodDefault || s instanceof z.ZodOptional) return deepPartial(s.unwrap() as z.ZodType);
  return s;
}
/** An alert profile: overrides of any rule except the profiles themselves. */
export const AlertProfileSchema = deepPartial(RulesSchema.omit({ alertProfiles: true }));
