/**
 * A gateway process that meets an error nobody catches: `dustgate run`'s own start-up (the same
 * fail-safe handler), the sprinkler switched on, then an exception thrown from a timer.
 * node --import tsx test/helpers/fatal-child.ts CONFIG
 */
import { failSafeOnFatal } from '../../gateway/cli/run-command.js';
import { loadConfigFile } from '../../gateway/config/load.js';
import { Gateway } from '../../gateway/gateway.js';
import { createLogger } from '../../gateway/log.js';

const gw = new Gateway({ loaded: loadConfigFile(process.argv[2]!), logger: createLogger('dustgate') });
failSafeOnFatal(gw);
await gw.start();
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
for (let i = 0; i < 50 && !gw.state().sprinkling.allowed; i++) await wait(100);
process.stdout.write(`sprinkler on: ${JSON.stringify(gw.requestOutput('sprinkler', true, { durationS: 600 }))}\n`);
await wait(1000);
setTimeout(() => {
  throw new Error('a bug nobody caught');
}, 10);
