import type { ComfyReport } from '../../../server/protocol/index.ts';

export interface NameRequest {
  title: string;
  label: string;
  initial: string;
  confirm: string;
  /** Returns a reason the value is refused, or null. */
  check: (value: string) => string | null;
  resolve: (value: string | null) => void;
}

export interface ConfirmRequest {
  title: string;
  message: string;
  confirm: string;
  danger: boolean;
  resolve: (ok: boolean) => void;
}

/** What an import of a ComfyUI workflow did (shown once it is open). */
export interface ReportRequest {
  title: string;
  report: ComfyReport;
}

export type UnsavedChoice = 'save' | 'discard' | 'cancel';

/** "Save changes to …?" before the canvas is replaced: Save, Discard or Cancel. */
export interface UnsavedRequest {
  title: string;
  message: string;
  resolve: (choice: UnsavedChoice) => void;
}

/** The app's own modal dialogs (no window.prompt/confirm, so tests can drive them). */
export class DialogState {
  name = $state.raw<NameRequest | null>(null);
  confirmation = $state.raw<ConfirmRequest | null>(null);
  unsaved = $state.raw<UnsavedRequest | null>(null);
  libraryOpen = $state.raw(false);
  report = $state.raw<ReportRequest | null>(null);

  get anyOpen(): boolean {
    return this.name !== null || this.confirmation !== null || this.unsaved !== null || this.libraryOpen || this.report !== null;
  }

  showReport(request: ReportRequest): void {
    this.report = request;
  }

  closeReport(): void {
    this.report = null;
  }

  askUnsaved(opts: Omit<UnsavedRequest, 'resolve'>): Promise<UnsavedChoice> {
    this.unsaved?.resolve('cancel');
    return new Promise((resolve) => {
      this.unsaved = { ...opts, resolve };
    });
  }

  answerUnsaved(choice: UnsavedChoice): void {
    const request = this.unsaved;
    this.unsaved = null;
    request?.resolve(choice);
  }

  askName(opts: Omit<NameRequest, 'resolve' | 'confirm' | 'check'> & Partial<Pick<NameRequest, 'confirm' | 'check'>>): Promise<string | null> {
    this.name?.resolve(null);
    return new Promise((resolve) => {
      this.name = { confirm: 'OK', check: () => null, ...opts, resolve };
    });
  }

  answerName(value: string | null): void {
    const request = this.name;
    this.name = null;
    request?.resolve(value);
  }

  confirm(opts: Omit<ConfirmRequest, 'resolve' | 'danger'> & { danger?: boolean }): Promise<boolean> {
    this.confirmation?.resolve(false);
    return new Promise((resolve) => {
      this.confirmation = { danger: false, ...opts, resolve };
    });
  }

  answerConfirm(ok: boolean): void {
    const request = this.confirmation;
    this.confirmation = null;
    request?.resolve(ok);
  }

  openLibrary(): void {
    this.libraryOpen = true;
  }

  closeLibrary(): void {
    this.libraryOpen = false;
  }
}
