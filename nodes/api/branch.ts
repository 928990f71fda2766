/**
 * One branch of a sweep as a gathering input (Grid, Metrics) receives it: the value the branch
 * produced and the widget values that made it.
 */
export interface BranchCoord {
  /** 0 for the sweep's x axis, 1 for its y axis. */
  axis: 0 | 1;
  /** The swept node's id and title, and the widget set on it. */
  node: string;
  title: string;
  widget: string;
  value: string | number | boolean;
  /** Position of `value` in the axis's value list. */
  index: number;
}

export interface Branch<T> {
  value: T;
  /** Empty for a plain (unswept) link. */
  coords: BranchCoord[];
  /** "widget=value, widget=value", or '' for a plain link. */
  label: string;
}

export function branchLabel(coords: BranchCoord[]): string {
  return coords.map((c) => `${c.widget}=${String(c.value)}`).join(', ');
}
