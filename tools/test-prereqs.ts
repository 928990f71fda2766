/**
 * `npm test`'s pretest step: what the tests need from the system, beyond npm. The browser tests
 * drive Debian's chromium (test/browser/harness.ts: /usr/bin/chromium, or CHROMIUM_PATH) and the
 * Grid tests draw labels in DejaVu Sans; the scale-out tests start `redis-server` (test/scale/harness.ts,
 * or REDIS_SERVER). When any is missing it installs them with apt-get as
 * root (as a fresh container or CI runs), and otherwise stops at once with the one command that
 * installs them, before type-checking, building and an hour of tests that would then fail.
 *
 * `npx tsx tools/test-prereqs.ts` runs it alone; `--check` only reports (exit 1 when missing).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface Requirement {
  /** The Debian package that provides it. */
  pkg: string;
  /** The file whose presence proves it. */
  file: string;
  what: string;
}

export function requirements(env: NodeJS.ProcessEnv = process.env): Requirement[] {
  return [
    { pkg: 'chromium', file: env.CHROMIUM_PATH ?? '/usr/bin/chromium', what: 'the browser tests drive it' },
    { pkg: 'fonts-dejavu-core', file: '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', what: 'the Grid node draws labels in DejaVu Sans' },
    { pkg: 'redis-server', file: env.REDIS_SERVER ?? '/usr/bin/redis-server', what: 'the scale-out tests (test/scale) start real Redis servers' },
  ];
}

export interface System {
  exists(file: string): boolean;
  isRoot: boolean;
  hasAptGet: boolean;
  /** Runs a command with the output shown; true when it exited 0. */
  run(command: string, args: string[], env?: NodeJS.ProcessEnv): boolean;
  say(line: string): void;
}

/** The one command a person runs to install `pkgs`. */
export function installCommand(pkgs: string[], isRoot: boolean): string {
  return `${isRoot ? '' : 'sudo '}apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
}

/** Installs what is missing where it can; returns null when everything is there, else what to tell. */
export function ensurePrerequisites(sys: System, reqs: Requirement[] = requirements(), opts: { install?: boolean } = {}): string | null {
  const missing = reqs.filter((r) => !sys.exists(r.file));
  if (missing.length === 0) return null;
  const pkgs = missing.map((r) => r.pkg);
  const why = missing.map((r) => `${r.pkg} (${r.file} is missing; ${r.what})`).join(', ');
  if (opts.install !== false && sys.isRoot && sys.hasAptGet) {
    sys.say(`npm test: installing ${pkgs.join(' and ')} with apt-get: ${why}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const ok = sys.run('apt-get', ['update', '-qq'], env) && sys.run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], env);
    const still = missing.filter((r) => !sys.exists(r.file));
    if (ok && still.length === 0) return null;
    return `npm test needs ${why}, and apt-get could not install ${still.map((r) => r.pkg).join(' and ') || pkgs.join(' and ')}. Run:\n  ${installCommand(pkgs, true)}`;
  }
  if (!sys.hasAptGet) {
    return `npm test needs ${why}. This system has no apt-get: install ${pkgs.join(' and ')} with its package manager${missing.some((r) => r.pkg === 'chromium') ? ', and set CHROMIUM_PATH to the chromium executable if it is not /usr/bin/chromium' : ''}.`;
  }
  return `npm test needs ${why}. Run:\n  ${installCommand(pkgs, sys.isRoot)}`;
}

function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir && fs.existsSync(`${dir}/${name}`));
}

const thisMachine: System = {
  exists: (file) => fs.existsSync(file),
  isRoot: process.getuid?.() === 0,
  hasAptGet: onPath('apt-get'),
  run: (command, args, env) => spawnSync(command, args, { stdio: 'inherit', env }).status === 0,
  say: (line) => process.stderr.write(`${line}\n`),
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const problem = ensurePrerequisites(thisMachine, requirements(), { install: !process.argv.includes('--check') });
  if (problem) {
    process.stderr.write(`${problem}\n`);
    process.exit(1);
  }
}
