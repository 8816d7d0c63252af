/**
 * Debian packages that tests and checks need (chromium for the consumer check, mosquitto and
 * socat for the transport tests), installed with apt-get when their program is missing, so that
 * `npm test` on a fresh Debian machine needs nothing installed by hand. Root runs apt-get
 * directly, anyone else through `sudo -n` (never a prompt). Waits for a dpkg lock held by
 * another install instead of failing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * @param {readonly ({ program: string, pkg: string } | { program: string, pkg: string, present: () => boolean })[]} needs
 *   the Debian package of each program; `program` is its absolute path, or, with `present`, a name
 *   for messages and `present()` says whether it is installed (a versioned path, say)
 * @param {(message: string) => void} [log]
 * @returns {void} throws an Error naming the command when an install fails or leaves a program missing
 */
export function ensureDebianPackages(needs, log = (m) => console.log(m)) {
  const has = (n) => ('present' in n ? n.present() : existsSync(n.program));
  const missing = needs.filter((n) => !has(n));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((n) => n.pkg))];
  log(`${missing.map((n) => n.program).join(', ')} missing: installing Debian's ${pkgs.join(', ')} (apt-get update && apt-get install -y ${pkgs.join(' ')})`);
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const apt = (args) => {
    const [cmd, ...rest] = [...sudo, 'apt-get', '-o', 'DPkg::Lock::Timeout=300', ...args];
    const r = spawnSync(cmd, rest, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 64 << 20 });
    if (r.error) throw new Error(`${cmd} ${rest.join(' ')}: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`${cmd} ${rest.join(' ')} exited with ${r.status}\n${r.stdout}${r.stderr}`);
  };
  apt(['update', '-qq']);
  apt(['install', '-y', '-qq', ...pkgs]);
  for (const n of missing) if (!has(n)) throw new Error(`apt-get installed ${n.pkg}, but ${n.program} is still missing`);
}
