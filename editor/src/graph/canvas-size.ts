import type { LGraphCanvas } from '@comfyorg/litegraph';

/**
 * Keeps the canvas the size of its container, at the screen's pixel density: the backing store
 * is CSS size × devicePixelRatio and the 2D context is scaled back, so litegraph keeps working
 * in CSS pixels and everything renders crisply. Returns a function that stops it.
 */
export function trackCanvasSize(canvas: LGraphCanvas, el: HTMLCanvasElement): () => void {
  el.style.display = 'block';
  el.style.width = '100%';
  el.style.height = '100%';
  let applied = false;
  const apply = (): void => {
    const rect = el.getBoundingClientRect();
    const dpr = Math.max(1, window.devicePixelRatio || 1);
    const w = Math.max(1, Math.round(rect.width * dpr));
    const h = Math.max(1, Math.round(rect.height * dpr));
    if (applied && el.width === w && el.height === h) return;
    applied = true;
    canvas.resize(w, h);
    el.getContext('2d')?.setTransform(dpr, 0, 0, dpr, 0, 0);
    canvas.setDirty(true, true);
    canvas.draw(true, true);
  };
  const observer = new ResizeObserver(apply);
  observer.observe(el);
  if (el.parentElement) observer.observe(el.parentElement);
  window.addEventListener('resize', apply);
  apply();
  return () => {
    observer.disconnect();
    window.removeEventListener('resize', apply);
  };
}
