/**
 * The runtime behind nodes' `env.runtime`: opens ONNX models in worker threads on the chosen (or
 * first working) execution provider, caches sessions per file version and provider, and keeps
 * their estimated memory under a budget by closing the least recently used ones.
 */
import os from 'node:os';
import path from 'node:path';
import { StudioError } from '../../nodes/api/errors.ts';
import { AUTO_ORDER, type ModelSession, type ProviderChoice, type ProviderName, type ProviderStatus, type Runtime } from '../../nodes/api/runtime.ts';
import { createLogger } from '../log.ts';
import { modelError, statModel, type ModelFile } from './model-file.ts';
import type { Created } from './protocol.ts';
import { probeProviders } from './providers.ts';
import { Session, type SessionOwner } from './session.ts';
import { DEFAULT_WORKER_HEAP_MB, startSessionWorker, WorkerRequestError, type SessionHost } from './session-host.ts';

const log = createLogger('runtime');

export interface RuntimeOptions {
  /** Default provider for load(); 'auto' tries AUTO_ORDER. */
  provider?: ProviderChoice;
  /** onnxruntime intra-op threads per session; the core count by default. */
  threads?: number;
  /** Sum of open sessions' estimated sizes above which idle ones are closed (LRU). */
  memoryBudgetBytes?: number;
  /**
   * JavaScript heap limit of each session worker, in MB (4096 by default): a worker over it ends
   * with "the model worker ran out of memory" and only its prompt fails. Model weights and
   * tensors are not on this heap; it bounds what JavaScript in the worker can hold.
   */
  workerHeapMb?: number;
  /** Enables the `...ForTest` hooks that make workers fail on purpose. Tests only. */
  testHooks?: boolean;
}

export interface RuntimeStats {
  sessions: Array<{ id: string; file: string; provider: ProviderName; estimatedBytes: number; open: boolean; busy: number }>;
  estimatedBytes: number;
  memoryBudgetBytes: number;
}

export interface StudioRuntime extends Runtime {
  readonly threads: number;
  stats(): RuntimeStats;
  /**
   * Closes every session and ends its worker; load() fails afterwards. Runs already inside a
   * worker finish first (a worker cannot be stopped inside onnxruntime's native run without
   * aborting the process). Safe to call twice.
   */
  close(): Promise<void>;
  /** Test hook: the session's worker dies during its next run, as a crash would. */
  crashWorkerForTest(sessionId: string): void;
  /**
   * Test hook, for a runtime created with `testHooks` (throws otherwise): the session's worker
   * allocates JavaScript objects until it runs over its heap limit; a run it is doing or is asked
   * for then fails with the out-of-memory error.
   */
  exhaustWorkerHeapForTest(sessionId: string): void;
}

export function createRuntime(opts: RuntimeOptions = {}): StudioRuntime {
  return new OrtRuntime(opts);
}

class OrtRuntime implements StudioRuntime, SessionOwner {
  readonly threads: number;
  private readonly choice: ProviderChoice;
  private readonly budget: number;
  private readonly sessions = new Map<string, Session>();
  private readonly opening = new Map<string, Promise<Session>>();
  /** What `auto` settled on per file version, so a provider that failed for it is not retried. */
  private readonly autoPick = new Map<string, { provider: ProviderName; report: string }>();
  private probed: Promise<ProviderStatus[]> | undefined;
  private counter = 0;
  private closed = false;
  private readonly workerHeapMb: number;
  private readonly testHooks: boolean;

  constructor(opts: RuntimeOptions) {
    this.workerHeapMb = opts.workerHeapMb ?? DEFAULT_WORKER_HEAP_MB;
    if (!(Number.isInteger(this.workerHeapMb) && this.workerHeapMb >= 16)) throw new RangeError(`workerHeapMb must be an integer of at least 16, got ${opts.workerHeapMb}`);
    this.testHooks = opts.testHooks === true;
    this.choice = opts.provider ?? 'auto';
    this.threads = Math.max(1, Math.floor(opts.threads ?? os.availableParallelism()));
    this.budget = opts.memoryBudgetBytes ?? Number.POSITIVE_INFINITY;
  }

  providers(): Promise<ProviderStatus[]> {
    this.probed ??= probeProviders(this.threads);
    return this.probed;
  }

  async load(modelPath: string, opts: { provider?: ProviderChoice } = {}): Promise<ModelSession> {
    if (this.closed) throw new StudioError('INTERNAL', 'the runtime is closed');
    const file = statModel(modelPath);
    const choice = opts.provider ?? this.choice;
    return choice === 'auto' ? this.loadAuto(file) : this.loadOn(file, choice);
  }

  /** A provider asked for by name: refused with the probe's reason when it cannot run here. */
  private async loadOn(file: ModelFile, provider: ProviderName): Promise<Session> {
    const status = provider === 'cpu' ? undefined : (await this.providers()).find((p) => p.name === provider);
    if (status && !status.available) {
      throw new StudioError('BAD_INPUT', `execution provider '${provider}' is not available here: ${status.reason}`);
    }
    try {
      return await this.session(file, provider, `${provider} (requested)`);
    } catch (err) {
      throw err instanceof ProviderFailure ? err.cause : err;
    }
  }

  /** The first provider of AUTO_ORDER that is available and opens the model; the report says why the others did not. */
  private async loadAuto(file: ModelFile): Promise<Session> {
    const picked = this.autoPick.get(file.stamp);
    if (picked) return this.session(file, picked.provider, picked.report);
    const skipped: string[] = [];
    const statuses = await this.providers();
    for (const name of AUTO_ORDER) {
      const status = statuses.find((p) => p.name === name) ?? { name, available: name === 'cpu', reason: 'not probed' };
      if (!status.available) {
        skipped.push(`${name}: ${status.reason}`);
        continue;
      }
      const report = skipped.length ? `${name} (${skipped.join('; ')})` : name;
      try {
        const session = await this.session(file, name, report);
        this.autoPick.set(file.stamp, { provider: name, report });
        return session;
      } catch (err) {
        // A provider that cannot take this model (an op it lacks, say): the next one may.
        if (!(err instanceof ProviderFailure) || name === 'cpu') throw err instanceof ProviderFailure ? err.cause : err;
        skipped.push(`${name}: ${err.message}`);
      }
    }
    throw new StudioError('INTERNAL', `no execution provider could open ${file.path} (${skipped.join('; ')})`);
  }

  async release(sessionId?: string): Promise<void> {
    const targets = [...this.sessions.values()].filter((s) => sessionId === undefined || s.id === sessionId);
    for (const s of targets) this.sessions.delete(s.key);
    await Promise.all(targets.map((s) => s.close('release')));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.opening.values());
    await this.release();
  }

  stats(): RuntimeStats {
    const sessions = [...this.sessions.values()].map((s) => ({
      id: s.id,
      file: s.file,
      provider: s.provider,
      estimatedBytes: s.estimatedBytes,
      open: s.isOpen,
      busy: s.busy,
    }));
    return { sessions, estimatedBytes: this.openBytes(), memoryBudgetBytes: this.budget };
  }

  crashWorkerForTest(sessionId: string): void {
    const session = [...this.sessions.values()].find((s) => s.id === sessionId);
    session?.worker?.crashOnNextReplyForTest();
  }

  exhaustWorkerHeapForTest(sessionId: string): void {
    if (!this.testHooks) throw new StudioError('INTERNAL', 'this runtime was created without test hooks');
    const session = [...this.sessions.values()].find((s) => s.id === sessionId);
    session?.worker?.exhaustHeapForTest();
  }

  touched(session: Session): void {
    session.lastUsed = performance.now();
  }

  async reopen(session: Session): Promise<SessionHost> {
    const file = statModel(session.file);
    if (file.stamp !== session.key.slice(0, session.key.lastIndexOf('|'))) {
      throw new StudioError('INTERNAL', `${session.file} changed since it was loaded; load it again`);
    }
    const { host } = await this.openWorker(file, session.provider);
    this.watch(session, host);
    this.enforceBudget(session);
    return host;
  }

  /** The cached session for (file version, provider), or a new one. */
  private session(file: ModelFile, provider: ProviderName, report: string): Promise<Session> {
    const key = `${file.stamp}|${provider}`;
    const cached = this.sessions.get(key);
    if (cached) {
      this.touched(cached);
      return Promise.resolve(cached);
    }
    let opening = this.opening.get(key);
    if (!opening) {
      opening = this.open(file, provider, report, key).finally(() => this.opening.delete(key));
      this.opening.set(key, opening);
    }
    return opening;
  }

  private async open(file: ModelFile, provider: ProviderName, report: string, key: string): Promise<Session> {
    const { host, created } = await this.openWorker(file, provider);
    const id = `${path.basename(file.path)}@${provider}#${++this.counter}`;
    const session = new Session({ id, key, file: file.path, provider, providerReport: report, estimatedBytes: file.estimatedBytes, host, created }, host, this);
    // An older version of the same file on the same provider will not be asked for again.
    for (const old of this.sessions.values()) {
      if (old.file === file.path && old.provider === provider) void this.release(old.id);
    }
    this.sessions.set(key, session);
    this.watch(session, host);
    log.debug(`opened ${id} in ${created.createMs.toFixed(0)} ms (${report})`);
    this.enforceBudget(session);
    if (this.closed) {
      // close() ran while this session was being created: it must not outlive the runtime.
      await this.release(id);
      throw new StudioError('INTERNAL', 'the runtime is closed');
    }
    return session;
  }

  private async openWorker(file: ModelFile, provider: ProviderName): Promise<{ host: SessionHost; created: Created }> {
    const host = startSessionWorker(`model ${path.basename(file.path)} (${provider})`, { heapMb: this.workerHeapMb, testHooks: this.testHooks });
    try {
      const reply = await host.request({ type: 'create', source: file.path, provider, threads: this.threads });
      return { host, created: reply.created! };
    } catch (err) {
      await host.stop();
      if (!(err instanceof WorkerRequestError)) throw err;
      if (err.failure.kind === 'model') throw modelError(file.path, err.failure.message);
      const failure = new StudioError('BAD_INPUT', `cannot start a ${provider} session for ${file.path}: ${err.failure.message}`);
      throw new ProviderFailure(err.failure.message.split('\n')[0]!, failure);
    }
  }

  /** A crashed worker takes its session with it; the next load() opens a fresh one. */
  private watch(session: Session, host: SessionHost): void {
    host.onCrash = (err) => {
      if (this.sessions.get(session.key) === session) this.sessions.delete(session.key);
      void session.close(err);
    };
  }

  private openBytes(also?: Session): number {
    let total = 0;
    for (const s of this.sessions.values()) if (s.isOpen || s === also) total += s.estimatedBytes;
    return total;
  }

  /** Evicts idle sessions, least recently used first, until the open ones (and `keep`) fit the budget. */
  private enforceBudget(keep: Session): void {
    let total = this.openBytes(keep);
    if (total <= this.budget) return;
    const idle = [...this.sessions.values()].filter((s) => s !== keep && s.isOpen && s.busy === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const s of idle) {
      if (total <= this.budget) break;
      total -= s.estimatedBytes;
      log.debug(`closing ${s.id} to stay within the runtime memory budget`);
      void s.close('evict');
    }
  }
}

/** A provider could not open a model that may open elsewhere; `cause` is what a forced load throws. */
class ProviderFailure extends Error {
  constructor(
    message: string,
    override readonly cause: StudioError,
  ) {
    super(message);
  }
}
