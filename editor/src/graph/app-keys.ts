/**
 * Keys the app binds to GraphView methods (editor/src/shortcuts.ts): Delete/Backspace, and
 * Ctrl/Cmd + C, V, X, Z, Y, G. Litegraph's canvas must leave these alone, or an edit would happen
 * twice (its Ctrl+V pastes too). Pure, so it is unit-tested.
 */
export function isAppShortcut(e: { key: string; ctrlKey: boolean; metaKey: boolean }): boolean {
  const key = e.key.toLowerCase();
  if (key === 'delete' || key === 'backspace') return true;
  return (e.ctrlKey || e.metaKey) && ['c', 'v', 'x', 'z', 'y', 'g'].includes(key);
}
