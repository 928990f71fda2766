import type { Studio } from './state/studio.svelte.ts';

/** True when keys typed now belong to a text field rather than to the canvas. */
export function typingIn(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  return target instanceof HTMLInputElement && !['button', 'checkbox', 'radio', 'range', 'file', 'submit', 'reset'].includes(target.type);
}

/**
 * The editor's keyboard shortcuts, on the window. Ctrl+S and Ctrl+Enter work everywhere; the
 * graph edits (undo, delete, group...) only when no text field has the focus and no dialog is
 * open. Keys the canvas already handled (defaultPrevented) are left alone. Copy and paste are the
 * browser's copy and paste events (clipboard-events.ts).
 */
export function bindShortcuts(studio: Studio): () => void {
  const onKey = (e: KeyboardEvent): void => {
    if (e.defaultPrevented || e.isComposing) return;
    const mod = e.ctrlKey || e.metaKey;
    const key = e.key.toLowerCase();
    const modal = studio.dialogs.anyOpen || studio.viewer.isOpen;
    if (mod && key === 's') {
      e.preventDefault();
      if (!studio.dialogs.anyOpen) void studio.attempt('Save', () => studio.documents.save());
      return;
    }
    if (mod && key === 'enter') {
      e.preventDefault();
      if (!modal) void studio.queuePrompt(e.shiftKey);
      return;
    }
    const graph = studio.graph;
    if (!graph || modal || typingIn(e.target) || e.altKey) return;
    // Ctrl+C and Ctrl+V are left to the browser, whose copy and paste events carry the clipboard:
    // clipboard-events.ts copies and pastes nodes there, and pastes images as Load Image nodes.
    const action = graphAction(key, mod, e.shiftKey);
    if (!action) return;
    e.preventDefault();
    action(graph);
  };
  window.addEventListener('keydown', onKey);
  return () => window.removeEventListener('keydown', onKey);
}

type GraphAction = (graph: NonNullable<Studio['graph']>) => void;

function graphAction(key: string, mod: boolean, shift: boolean): GraphAction | null {
  if (!mod) return key === 'delete' || key === 'backspace' ? (g) => g.deleteSelection() : null;
  if (key === 'z') return shift ? (g) => g.redo() : (g) => g.undo();
  if (key === 'y' && !shift) return (g) => g.redo();
  if (key === 'g' && !shift) return (g) => g.groupSelection();
  return null;
}
