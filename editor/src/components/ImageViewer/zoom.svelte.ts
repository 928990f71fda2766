const MIN_SCALE = 0.02;
const MAX_SCALE = 32;

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

  panBy(dx: number, dy: number): void {
    this.x += dx;
    this.y += dy;
  }
}
