/**
 * The CLI's language: `--lang zh-CN|en` anywhere on the command line, else LC_ALL, LC_MESSAGES,
 * LANG (gateway/i18n.ts). Machine-readable output (--json, exit codes, the pasted YAML's keys)
 * never changes with it.
 */
import { localeFromEnv, t, type Locale, type MessageKey } from '../i18n.js';

let current: Locale = localeFromEnv();

/** Take `--lang X` / `--lang=X` out of the arguments and use it; returns the rest. */
export function takeLang(args: string[]): string[] {
  const out: string[] = [];
  let flag: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (a === '--lang') flag = args[++i] ?? '';
    else if (a.startsWith('--lang=')) flag = a.slice(7);
    else out.push(a);
  }
  if (flag !== undefined) {
    if (!/^(zh|en)([-_][A-Za-z]+)?$/i.test(flag)) {
      process.stderr.write(`dustgate: --lang: expected zh-CN or en, got "${flag}"\n`);
      process.exit(1);
    }
    current = localeFromEnv({}, flag);
  } else current = localeFromEnv();
  return out;
}

export const cliLocale = (): Locale => current;

/** A message of the catalog in the CLI's language. */
export const tr = (key: MessageKey | (string & {}), params?: Record<string, unknown>): string => t(current, key, params);

/** Pad to a width in terminal columns (a Chinese character takes two). */
export function padCols(s: string, width: number): string {
  let cols = 0;
  for (const ch of s) cols += /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/.test(ch) ? 2 : 1;
  return s + ' '.repeat(Math.max(0, width - cols));
}
