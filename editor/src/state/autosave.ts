import type { Workflow } from '../../../server/protocol/index.ts';

const KEY = 'supir-studio.draft.v1';

/** The editor's working copy, kept in localStorage so that a reload restores it. */
export interface Draft {
  name: string | null;
  title: string;
  dirty: boolean;
  workflow: Workflow;
}

export function readDraft(): { name: string | null; title: string; dirty: boolean; workflow: unknown } | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const draft = JSON.parse(raw) as Partial<Draft>;
    if (typeof draft !== 'object' || draft === null || draft.workflow === undefined) return null;
    return {
      name: typeof draft.name === 'string' ? draft.name : null,
      title: typeof draft.title === 'string' ? draft.title : 'Untitled',
      dirty: draft.dirty === true,
      workflow: draft.workflow,
    };
  } catch {
    return null;
  }
}

export function writeDraft(draft: Draft): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(draft));
  } catch {
    // Storage full or disabled: the draft is a convenience, the saved workflows are the record.
  }
}

/** Returns a function that runs `fn` once calls have paused for `ms`, and a `flush` to run it now. */
export function debounce(fn: () => void, ms: number): { (): void; flush(): void } {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const run = (): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      fn();
    }, ms);
  };
  run.flush = (): void => {
    if (!timer) return;
    clearTimeout(timer);
    timer = null;
    fn();
  };
  return run;
}
