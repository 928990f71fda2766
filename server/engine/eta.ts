/**
 * The time a running node has left, from its progress reports: the pace since its first report,
 * applied to the work not done yet. The first report is the reference point rather than the
 * node's start because what a node does before it (opening a model, say) says nothing about
 * the pace of its steps; with only one report so far, the time since the start stands in.
 */
export class EtaEstimator {
  #first: { value: number; at: number } | null = null;

  constructor(private readonly startedAt: number) {}

  /** Milliseconds left after reporting `value` of `max` at time `now`; null while no pace is known. */
  update(value: number, max: number, now: number): number | null {
    if (!(max > 0) || !Number.isFinite(value)) return null;
    const left = Math.max(0, max - value);
    if (left === 0) return 0;
    const first = this.#first;
    if (!first || value < first.value) {
      // The first report (or a node that started counting again, e.g. a second pass).
      this.#first = { value, at: now };
      return value > 0 ? (left * (now - this.startedAt)) / value : null;
    }
    if (value === first.value) return value > 0 ? (left * (now - this.startedAt)) / value : null;
    return (left * (now - first.at)) / (value - first.value);
  }
}
