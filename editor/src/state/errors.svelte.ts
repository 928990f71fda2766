import type { NodeErrorInfo, ValidationIssue } from '../../../server/protocol/index.ts';

export interface ExecutionError extends NodeErrorInfo {
  prompt_id: string;
}

export interface Notice {
  id: number;
  kind: 'info' | 'error';
  text: string;
}

/** What went wrong, for the error panel (validation, execution) and the toasts (everything else). */
export class ErrorState {
  /** The issues of the last refused POST /api/prompt, with the server's summary. */
  issues = $state.raw<ValidationIssue[]>([]);
  issuesMessage = $state.raw<string | null>(null);
  /** The last execution error of a prompt. */
  execution = $state.raw<ExecutionError | null>(null);
  notices = $state.raw<Notice[]>([]);
  #nextId = 1;

  get hasPanel(): boolean {
    return this.issues.length > 0 || this.issuesMessage !== null || this.execution !== null;
  }

  showIssues(issues: ValidationIssue[], message: string): void {
    this.issues = issues;
    this.issuesMessage = message;
  }

  showExecution(error: ExecutionError): void {
    this.execution = error;
  }

  clearIssues(): void {
    this.issues = [];
    this.issuesMessage = null;
  }

  clearPanel(): void {
    this.clearIssues();
    this.execution = null;
  }

  /** Shows a short message; errors stay until dismissed, information goes after a few seconds. */
  notify(kind: Notice['kind'], text: string): void {
    const id = this.#nextId++;
    this.notices = [...this.notices.slice(-3), { id, kind, text }];
    if (kind === 'info') setTimeout(() => this.dismiss(id), 4000);
  }

  dismiss(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
  }
}
