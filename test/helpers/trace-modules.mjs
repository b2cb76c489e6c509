// Prints each package the process imports ("MOD <name>" on stderr): the CLI's lazy-loading test uses it.
import { register } from 'node:module';
register(
  'data:text/javascript,' +
    encodeURIComponent(`export async function resolve(s, c, n) {
  const r = await n(s, c);
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(r.url);
  if (m) process.stderr.write('MOD ' + m[1] + '\\n');
  return r;
}`),
);
