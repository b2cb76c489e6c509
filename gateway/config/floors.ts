/**
 * Regulatory floors (SPEC §12): the preset's limits that come from the regulation — no sprinkling
 * below 4 °C (road) and 5 °C (greenbelt), no sweeping at Beaufort 3 and above, the earthwork ban
 * window and its alert levels — may be made stricter anywhere, but looser only in the site file on
 * the box, with `allowBelowRegulation: true` beside the value (logged at every start). A remote
 * change can never relax one, not even below a value the site file relaxed.
 */
import type { Rules } from '../rules/schema.js';

/** A problem with its config path (the same shape as load.ts's ConfigIssue). */
export interface FloorIssue {
  path: string;
  message: string;
}

export interface Floors {
  minTempC: number;
  greenbeltMinTempC: number;
  stopAtBeaufort: number;
  /** MM-DD days the ban must cover */
  banDays: string[];
  banLevels: string[];
}

/** The sections that carry a floor, and may carry `allowBelowRegulation`. */
export const FLOOR_SECTIONS = ['sprinkling', 'sweeping', 'earthworkBan'] as const;
type Section = (typeof FLOOR_SECTIONS)[number];

const DAYS: string[] = (() => {
  const out: string[] = [];
  for (let m = 1; m <= 12; m++) for (let d = 1; d <= new Date(Date.UTC(2024, m, 0)).getUTCDate(); d++) out.push(`${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`);
  return out;
})();

/** The MM-DD days inside any of the periods (a period may wrap the new year: 11-15 .. 03-15). */
function daysOf(periods: readonly { from: string; to: string }[]): Set<string> {
  const set = new Set<string>();
  for (const p of periods) for (const d of DAYS) if (p.from <= p.to ? d >= p.from && d <= p.to : d >= p.from || d <= p.to) set.add(d);
  return set;
}

/** The floors a preset's rules set. */
export function floorsOf(rules: Rules): Floors {
  return {
    minTempC: rules.sprinkling.minTempC,
    greenbeltMinTempC: rules.sprinkling.greenbeltMinTempC,
    stopAtBeaufort: rules.sweeping.stopAtBeaufort,
    banDays: [...daysOf(rules.earthworkBan.periods)],
    banLevels: [...rules.earthworkBan.alertLevels],
  };
}

/** The floors for remote changes: the preset's, lowered where the site file itself relaxed a value (with the flag). */
export function siteFloors(preset: Floors, site: Rules): Floors {
  const f = { ...preset };
  if (allowed(site, 'sprinkling')) {
    f.minTempC = Math.min(f.minTempC, site.sprinkling.minTempC);
    f.greenbeltMinTempC = Math.min(f.greenbeltMinTempC, site.sprinkling.greenbeltMinTempC);
  }
  if (allowed(site, 'sweeping')) f.stopAtBeaufort = Math.max(f.stopAtBeaufort, site.sweeping.stopAtBeaufort);
  if (allowed(site, 'earthworkBan')) {
    const days = daysOf(site.earthworkBan.periods);
    f.banDays = f.banDays.filter((d) => days.has(d));
    f.banLevels = f.banLevels.filter((l) => site.earthworkBan.alertLevels.includes(l as never));
  }
  return f;
}

export function allowed(rules: Rules, section: Section): boolean {
  return (rules[section] as { allowBelowRegulation?: boolean }).allowBelowRegulation === true;
}

/**
 * Where `rules` (and every alert profile applied to them) is looser than `floors`. `honourFlags`:
 * a section with `allowBelowRegulation: true` is not checked (the site file's case).
 */
export function floorIssues(rules: Rules, floors: Floors, o: { honourFlags: boolean; profiles?: Record<string, Rules> }): FloorIssue[] {
  const out: FloorIssue[] = [];
  const how = o.honourFlags ? 'set allowBelowRegulation: true beside it in the site file to allow it on this box' : 'a remote change can make it stricter, never looser; only the site file on the box can relax it';
  const check = (r: Rules, at: string) => {
    const skip = (s: Section) => o.honourFlags && allowed(rules, s);
    if (!skip('sprinkling')) {
      if (r.sprinkling.minTempC < floors.minTempC)
        out.push({ path: `${at}sprinkling.minTempC`, message: `${r.sprinkling.minTempC} °C is below the regulation's ${floors.minTempC} °C for road sprinkling (“4℃以下低温天气停止洒水”): ${how}` });
      if (r.sprinkling.greenbeltMinTempC < floors.greenbeltMinTempC)
        out.push({ path: `${at}sprinkling.greenbeltMinTempC`, message: `${r.sprinkling.greenbeltMinTempC} °C is below the regulation's ${floors.greenbeltMinTempC} °C for greenbelt watering: ${how}` });
    }
    if (!skip('sweeping') && r.sweeping.stopAtBeaufort > floors.stopAtBeaufort)
      out.push({ path: `${at}sweeping.stopAtBeaufort`, message: `Beaufort ${r.sweeping.stopAtBeaufort} is above the regulation's ${floors.stopAtBeaufort} (“三级及以上大风天气停止人工清扫作业”): ${how}` });
    if (!skip('earthworkBan')) {
      const days = daysOf(r.earthworkBan.periods);
      const missing = floors.banDays.filter((d) => !days.has(d));
      if (missing.length)
        out.push({ path: `${at}earthworkBan.periods`, message: `the ban no longer covers ${missing.length} day(s) of the regulation's window (first ${missing[0]}): ${how}` });
      const levels = floors.banLevels.filter((l) => !r.earthworkBan.alertLevels.includes(l as never));
      if (levels.length) out.push({ path: `${at}earthworkBan.alertLevels`, message: `${levels.join(', ')} must stay in the ban's alert levels: ${how}` });
    }
  };
  check(rules, 'rules.');
  for (const [level, r] of Object.entries(o.profiles ?? {})) check(r, `rules.alertProfiles.${level}.`);
  return out;
}
