import { typingIn } from './shortcuts.ts';
import type { Studio } from './state/studio.svelte.ts';

/**
 * Marks what the editor put on the system clipboard when nodes were copied, so that a paste after
 * it pastes those nodes even if the clipboard held an image before (the copy replaces it).
 */
const NODES_TYPE = 'application/x-supir-studio-nodes';

/**
 * Ctrl+C / Ctrl+V through the browser's copy and paste events (which carry the system clipboard):
 * copying selected nodes keeps them in litegraph's clipboard and marks the system clipboard;
 * pasting an image (a screenshot, "Copy image" in a browser) makes a Load Image node of it, or
 * replaces the image of the selected Load Image node; any other paste pastes the copied nodes.
 * Text fields, dialogs and the viewer keep the browser's own copy and paste.
 */
export function bindClipboard(studio: Studio): () => void {
  let pointer: { x: number; y: number } | null = null;
  const onMove = (e: PointerEvent): void => {
    pointer = { x: e.clientX, y: e.clientY };
  };
  const ours = (e: Event): boolean =>
    studio.graph !== null && !studio.dialogs.anyOpen && !studio.viewer.isOpen && !typingIn(e.target) && !typingIn(document.activeElement);

  const onCopy = (e: ClipboardEvent): void => {
    // Text selected on the page (an error message) is copied as text.
    if (!ours(e) || !(window.getSelection()?.isCollapsed ?? true)) return;
    if (!studio.graph!.copySelection()) return;
    e.clipboardData?.setData(NODES_TYPE, '1');
    e.clipboardData?.setData('text/plain', '');
    e.preventDefault();
  };

  const onPaste = (e: ClipboardEvent): void => {
    if (!ours(e)) return;
    e.preventDefault();
    const data = e.clipboardData;
    const images = data && !data.types.includes(NODES_TYPE) ? imageFiles(data) : [];
    if (images.length) void studio.attempt('Paste', () => studio.images.paste(images, pointer));
    else studio.graph!.paste();
  };

  window.addEventListener('pointermove', onMove, true);
  window.addEventListener('copy', onCopy);
  window.addEventListener('paste', onPaste);
  return () => {
    window.removeEventListener('pointermove', onMove, true);
    window.removeEventListener('copy', onCopy);
    window.removeEventListener('paste', onPaste);
  };
}

/** The image files a clipboard holds (from `files`, else from its file items). */
function imageFiles(data: DataTransfer): File[] {
  const files = [...data.files].filter((f) => f.type.startsWith('image/'));
  if (files.length) return files;
  return [...data.items]
    .filter((i) => i.kind === 'file' && i.type.startsWith('image/'))
    .map((i) => i.getAsFile())
    .filter((f): f is File => f !== null);
}
