export interface ViewerImage {
  url: string;
  label: string;
}

/** The image viewer: one image, or two (A and B) under a compare slider. */
export class ViewerState {
  image = $state.raw<ViewerImage | null>(null);
  mode = $state.raw<'single' | 'compare'>('single');
  a = $state.raw<ViewerImage | null>(null);
  b = $state.raw<ViewerImage | null>(null);
  /** How two images are compared: under one A/B slider, or side by side with one shared zoom. */
  layout = $state.raw<'slider' | 'side'>('slider');
  /** Which side the next pick from the strip goes to in compare mode. */
  slot = $state.raw<'a' | 'b'>('b');

  get isOpen(): boolean {
    return this.image !== null || this.mode === 'compare';
  }

  open(image: ViewerImage): void {
    this.image = image;
    this.mode = 'single';
  }

  close(): void {
    this.image = null;
    this.mode = 'single';
  }

  /** Compare mode starts with the shown image as A; B is picked next. */
  startCompare(): void {
    this.a = this.image ?? this.a;
    this.slot = 'b';
    this.mode = 'compare';
  }

  stopCompare(): void {
    this.mode = 'single';
    this.image = this.image ?? this.a;
  }

  setSlot(slot: 'a' | 'b'): void {
    this.slot = slot;
  }

  /** A strip click: shows the image, or in compare mode puts it in the current slot and moves on. */
  pick(image: ViewerImage): void {
    if (this.mode === 'single') {
      this.image = image;
      return;
    }
    if (this.slot === 'a') {
      this.a = image;
      this.slot = 'b';
    } else {
      this.b = image;
      this.slot = 'a';
    }
  }

  setLayout(layout: 'slider' | 'side'): void {
    this.layout = layout;
  }

  /** Opens straight into compare mode with both images chosen (tests, and comparing two branches). */
  compare(a: ViewerImage, b: ViewerImage): void {
    this.a = a;
    this.b = b;
    this.image = a;
    this.slot = 'a';
    this.mode = 'compare';
  }

  swap(): void {
    [this.a, this.b] = [this.b, this.a];
  }
}
