/**
 * The `dustgate` binary. Each command loads only what it uses: `--version` loads nothing but the
 * version, `read` the drivers, `config validate` the schema; the gateway, the broker, SQLite,
 * johnny-five and prom-client only load for the commands that need them (bench: "CLI start-up").
 */
import { VERSION } from '../version.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${VERSION}\n`);
} else {
  const { runCli } = await import('./program.js');
  await runCli(args);
}
