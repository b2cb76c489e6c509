/** `dustgate install-service` into a temporary root: the unit, the data folder, the checks. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/gateway-rig.js';
import { runCommand } from '../helpers/system.js';

/** Where the package is installed on the box (only the path goes into the unit). */
function installedCli(): string {
  const dir = path.join(tempDir('opt'), 'dustgate/dist');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'cli.js'), '// the built dustgate binary lives here on a real box\n');
  return path.join(dir, 'cli.js');
}
const dustgate = (args: string[]) => runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), ...args], { cwd: ROOT });

describe('install-service', () => {
  it('writes a unit that restarts always and runs the config from its own data folder', async () => {
    const root = tempDir('svc');
    const cli = installedCli();
    const r = await dustgate(['install-service', '--config', 'seeds/sites/construction-zhengzhou.yaml', '--root', root, '--user', 'dust', '--data-dir', '/var/lib/dustgate-zz', '--cli', cli]);
    expect(r.code, r.stderr).toBe(0);
    const unitFile = path.join(root, 'etc/systemd/system/dustgate.service');
    const unit = readFileSync(unitFile, 'utf8');
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^User=dust$/m);
    expect(unit).toMatch(/^SupplementaryGroups=dialout$/m);
    expect(unit).toMatch(/^WorkingDirectory=\/var\/lib\/dustgate-zz$/m);
    expect(unit).toMatch(new RegExp(`^ExecStart=${process.execPath.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} --max-semi-space-size=4 ${cli.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} run --config ${path.join(ROOT, 'seeds/sites/construction-zhengzhou.yaml').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
    expect(unit).toMatch(/^WantedBy=multi-user.target$/m);
    // ready after the first poll cycle; restarted when the control loop makes no progress for 30 s
    expect(unit).toMatch(/^Type=notify$/m);
    expect(unit).toMatch(/^NotifyAccess=main$/m);
    expect(unit).toMatch(/^WatchdogSec=30$/m);
    expect(existsSync(path.join(root, 'var/lib/dustgate-zz'))).toBe(true);
    // the journal kept small (SD card space and wear)
    expect(readFileSync(path.join(root, 'etc/systemd/journald.conf.d/dustgate.conf'), 'utf8')).toMatch(/^\[Journal\]\nSystemMaxUse=64M$/m);
    expect(r.stdout).toMatch(/not enabled \(--root/);
  });

  it('--lan opens the page to the site network: a LAN bind and a generated token in the config the service runs, the URL and a QR code printed', async () => {
    const root = tempDir('svc-lan');
    const config = path.join(root, 'site.yaml');
    writeFileSync(config, readFileSync(path.join(ROOT, 'seeds/sites/demo.yaml'), 'utf8'));
    const r = await dustgate(['install-service', '--config', config, '--root', root, '--cli', installedCli(), '--lan']);
    expect(r.code, r.stderr).toBe(0);
    const { parse } = await import('yaml');
    const http = parse(readFileSync(config, 'utf8')).http as { bind: string; token: string };
    expect(http.bind).toBe('0.0.0.0');
    expect(http.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(readFileSync(config, 'utf8')).toContain('# The demo site'); // comments kept
    expect(r.stdout).toMatch(new RegExp(`Status page: http://\\S+:8080/\\?token=${http.token}`));
    expect(r.stdout).toMatch(/[▀▄█]{5}/); // the QR code
  });

  it('--dry-run prints the unit and writes nothing; a bad config is refused before anything is written', async () => {
    const root = tempDir('svc-dry');
    const d = await dustgate(['install-service', '--config', 'seeds/sites/demo.yaml', '--dry-run', '--root', root, '--cli', installedCli()]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/^\[Unit\]/);
    const plain = await dustgate(['install-service', '--config', 'seeds/sites/demo.yaml', '--dry-run', '--watchdog-sec', '0', '--cli', installedCli()]);
    expect(plain.stdout).toMatch(/^Type=simple$/m);
    expect(plain.stdout).not.toMatch(/WatchdogSec/);
    expect(existsSync(path.join(root, 'etc'))).toBe(false);
    const bad = await dustgate(['install-service', '--config', 'nope.yaml', '--root', root, '--cli', installedCli()]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^dustgate: \/.*nope\.yaml: no such file/);
    expect(existsSync(path.join(root, 'etc'))).toBe(false);
  });
});
