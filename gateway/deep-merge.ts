/** The deep merge of a remote patch or a site's rules into a base (SPEC §8: objects merge key by key, anything else replaces, `null` deletes). */
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge: objects merge key by key, anything else (arrays too) replaces. `null` deletes. */
export function deepMerge<T>(base: T, patch: unknown): T {
  if (!isObj(base) || !isObj(patch)) return (patch === undefined ? base : patch) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    // an own property even for "__proto__" (JSON.parse makes one): never the object's prototype, so
    // the schema sees it and refuses it as an unknown key
    else Object.defineProperty(out, k, { value: Object.hasOwn(out, k) && isObj(out[k]) && isObj(v) ? deepMerge(out[k], v) : v, enumerable: true, writable: true, configurable: true });
  }
  return out as T;
}

