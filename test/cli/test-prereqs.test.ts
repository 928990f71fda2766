import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ensurePrerequisites, requirements, type System } from '../../tools/test-prereqs.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CHROMIUM = '/usr/bin/chromium';
const FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';
const REDIS = '/usr/bin/redis-server';

/** A machine with the given files, recording the commands run; `installs` makes apt-get add files. */
function machine(opts: { files: string[]; isRoot: boolean; hasAptGet?: boolean; installs?: string[]; aptFails?: boolean }) {
  const files = new Set(opts.files);
  const commands: string[] = [];
  const said: string[] = [];
  const sys: System = {
    exists: (f) => files.has(f),
    isRoot: opts.isRoot,
    hasAptGet: opts.hasAptGet ?? true,
    run(command, args, env) {
      commands.push([command, ...args].join(' '));
      expect(env?.DEBIAN_FRONTEND).toBe('noninteractive');
      if (args[0] === 'install' && !opts.aptFails) for (const f of opts.installs ?? []) files.add(f);
      return !opts.aptFails;
    },
    say: (line) => said.push(line),
  };
  return { sys, commands, said };
}

const reqs = requirements({});

describe('npm test prerequisites (pretest)', () => {
  it('does nothing when chromium, the font and redis-server are there', () => {
    const m = machine({ files: [CHROMIUM, FONT, REDIS], isRoot: true });
    expect(ensurePrerequisites(m.sys, reqs)).toBeNull();
    expect(m.commands).toEqual([]);
  });

  it('as root with apt-get: updates the lists and installs exactly what is missing', () => {
    const m = machine({ files: [FONT, REDIS], isRoot: true, installs: [CHROMIUM] });
    expect(ensurePrerequisites(m.sys, reqs)).toBeNull();
    expect(m.commands).toEqual(['apt-get update -qq', 'apt-get install -y -qq --no-install-recommends chromium']);
    expect(m.said.join('\n')).toMatch(/installing chromium with apt-get/);
  });

  it('not root: stops at once with the one command to run, installing nothing', () => {
    const m = machine({ files: [], isRoot: false });
    const problem = ensurePrerequisites(m.sys, reqs);
    expect(m.commands).toEqual([]);
    expect(problem).toMatch(/\n {2}sudo apt-get install -y --no-install-recommends chromium fonts-dejavu-core redis-server$/);
  });

  it('says so when apt-get fails, with the command', () => {
    const m = machine({ files: [], isRoot: true, aptFails: true });
    expect(ensurePrerequisites(m.sys, reqs)).toMatch(/apt-get could not install chromium and fonts-dejavu-core and redis-server\. Run:\n {2}apt-get install/);
  });

  it('without apt-get: names the packages and CHROMIUM_PATH', () => {
    const m = machine({ files: [FONT, REDIS], isRoot: true, hasAptGet: false });
    expect(ensurePrerequisites(m.sys, reqs)).toMatch(/no apt-get: install chromium .*CHROMIUM_PATH/);
    expect(m.commands).toEqual([]);
  });

  it('on this machine (where the tests run at all) it passes and installs nothing', async () => {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'tools/test-prereqs.ts', '--check'], { cwd: ROOT });
    expect(stdout + stderr).toBe('');
  }, 30_000);
});
