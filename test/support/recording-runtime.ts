/**
 * A runtime whose sessions record every run (the first feed's dims) and whether it started after
 * the test marked the moment it pressed Stop (`aborted.at = true`).
 */
import type { ModelSession, Runtime } from '../../nodes/api/runtime.ts';

export function recording(inner: Runtime): { runtime: Runtime; runs: Array<{ dims: number[]; afterAbort: boolean }>; aborted: { at: boolean } } {
  const runs: Array<{ dims: number[]; afterAbort: boolean }> = [];
  const aborted = { at: false };
  const runtime: Runtime = {
    providers: () => inner.providers(),
    release: (id) => inner.release(id),
    async load(file, opts) {
      const session = await inner.load(file, opts);
      const wrapped: ModelSession = Object.create(session) as ModelSession;
      wrapped.run = (feeds, o) => {
        runs.push({ dims: [...Object.values(feeds)[0]!.dims], afterAbort: aborted.at });
        return session.run(feeds, o);
      };
      return wrapped;
    },
  };
  return { runtime, runs, aborted };
}
