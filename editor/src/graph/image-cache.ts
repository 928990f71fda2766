/** Images shown on nodes, loaded once per URL; the canvas redraws when one arrives. */
interface Entry {
  img: HTMLImageElement;
  state: 'loading' | 'ok' | 'error';
  used: number;
}

export class ImageCache {
  readonly #entries = new Map<string, Entry>();
  readonly #onLoad: () => void;
  readonly #limit: number;

  constructor(onLoad: () => void, limit = 64) {
    this.#onLoad = onLoad;
    this.#limit = limit;
  }

  /** The loaded image, or null while it loads (or when it failed); starts loading on first use. */
  get(url: string): HTMLImageElement | null {
    const entry = this.#entry(url);
    return entry.state === 'ok' ? entry.img : null;
  }

  failed(url: string): boolean {
    return this.#entry(url).state === 'error';
  }

  /** width / height once loaded, else null. */
  aspect(url: string): number | null {
    const img = this.get(url);
    return img && img.naturalWidth > 0 && img.naturalHeight > 0 ? img.naturalWidth / img.naturalHeight : null;
  }

  clear(): void {
    this.#entries.clear();
  }

  #entry(url: string): Entry {
    let entry = this.#entries.get(url);
    if (entry) {
      entry.used = performance.now();
      return entry;
    }
    const img = new Image();
    img.decoding = 'async';
    const created: Entry = { img, state: 'loading', used: performance.now() };
    img.onload = () => {
      created.state = 'ok';
      this.#onLoad();
    };
    img.onerror = () => {
      created.state = 'error';
      this.#onLoad();
    };
    img.src = url;
    this.#entries.set(url, created);
    this.#evict();
    return created;
  }

  #evict(): void {
    if (this.#entries.size <= this.#limit) return;
    const oldest = [...this.#entries.entries()].sort((a, b) => a[1].used - b[1].used);
    for (const [url] of oldest.slice(0, this.#entries.size - this.#limit)) this.#entries.delete(url);
  }
}
