const MIN_SCALE = 0.02;
const MAX_SCALE = 32;
/** One wheel notch zooms by this much, in or out. */
export const NOTCH = 1.1;

/** The most notches one wheel event counts (a fast flick): 1.1^5, about 1.6x. */
const MAX_NOTCHES = 5;

/**
 * The zoom factor of one wheel event: 1.1 per notch (a mouse wheel's notch is 100 px, 3 lines or
 * a page), a trackpad's small steps a fraction of that, never more than 5 notches at once.
 */
export function wheelFactor(deltaY: number, deltaMode: number): number {
  const notches = deltaMode === 1 ? deltaY / 3 : deltaMode === 2 ? deltaY : deltaY / 100;
  return NOTCH ** -Math.max(-MAX_NOTCHES, Math.min(MAX_NOTCHES, notches));
}

/** Pan and zoom of an image of `width` x `height` inside a viewport (screen px = image px * scale + offset). */
export class ZoomPan {
  scale = $state.raw(1);
  x = $state.raw(0);
  y = $state.raw(0);
  width = $state.raw(0);
  height = $state.raw(0);

  get transform(): string {
    return `translate(${this.x}px, ${this.y}px) scale(${this.scale})`;
  }

  setImage(width: number, height: number): void {
    this.width = width;
    this.height = height;
  }

  /** Fits the image inside the viewport with a margin; small images are enlarged at most 4x. */
  fit(viewW: number, viewH: number, margin = 24): void {
    if (!this.width || !this.height || !viewW || !viewH) return;
    const fitScale = Math.min((viewW - margin * 2) / this.width, (viewH - margin * 2) / this.height);
    this.scale = Math.max(MIN_SCALE, Math.min(fitScale, 4));
    this.x = (viewW - this.width * this.scale) / 2;
    this.y = (viewH - this.height * this.scale) / 2;
  }

  /** Zooms by `factor` keeping the image point under (px, py) (viewport coordinates) in place. */
  zoomAt(px: number, py: number, factor: number): void {
    const next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * factor));
    const k = next / this.scale;
    this.x = px - (px - this.x) * k;
    this.y = py - (py - this.y) * k;
    this.scale = next;
  }

  /** 100 %: one image pixel per screen pixel, the point at the viewport's centre kept in place. */
  actualSize(viewW: number, viewH: number): void {
    if (!this.width || !this.height || !viewW || !viewH) return;
    this.zoomAt(viewW / 2, viewH / 2, 1 / this.scale);
  }

  panBy(dx: number, dy: number): void {
    this.x += dx;
    this.y += dy;
  }
}
