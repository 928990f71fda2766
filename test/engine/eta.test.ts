import { describe, expect, it } from 'vitest';
import { EtaEstimator } from '../../server/engine/eta.ts';
import { chain, Harness } from '../support/engine-harness.ts';

describe('EtaEstimator', () => {
  it('applies the pace since the first report to the work left', () => {
    // The node spent 5 s before its first report (opening a model): that is not its pace.
    const eta = new EtaEstimator(0);
    expect(eta.update(1, 10, 5000)).toBe(9 * 5000); // one report: the time since the start stands in
    expect(eta.update(2, 10, 6000)).toBe(8 * 1000); // 1 step per second since then
    expect(eta.update(6, 10, 10_000)).toBe(4 * 1000);
    expect(eta.update(10, 10, 14_000)).toBe(0);
  });

  it('knows nothing before a step is done, and takes fractions of steps', () => {
    const eta = new EtaEstimator(0);
    expect(eta.update(0, 4, 100)).toBeNull();
    expect(eta.update(0.5, 4, 600)).toBe(3.5 * 1000); // 0.5 in 500 ms since the 0 report
    expect(eta.update(1, 4, 1100)).toBe(3 * 1000);
    expect(eta.update(1, 0, 1200)).toBeNull();
  });

  it('starts over when a node counts again from lower down (a second pass)', () => {
    const eta = new EtaEstimator(0);
    eta.update(5, 10, 1000);
    eta.update(10, 10, 2000);
    expect(eta.update(1, 10, 2500)).toBe(9 * 2500); // new reference; the start stands in once
    expect(eta.update(3, 10, 2700)).toBeCloseTo(7 * 100);
  });
});

describe('progress events', () => {
  it('carry the time left, which falls as the node runs, and none once the work is done', async () => {
    const h = new Harness();
    const prompt = chain();
    prompt['1'] = { class_type: 'TestSlow', inputs: { steps: 8, ms: 30 } };
    prompt['2']!.inputs.a = ['1', 0];
    await h.run(prompt);
    const progress = h.events.flatMap((e) => (e.type === 'progress' ? [e] : []));
    expect(progress.length).toBeGreaterThanOrEqual(3);
    const withEta = progress.filter((e) => e.value < e.max);
    expect(withEta.every((e) => typeof e.eta_ms === 'number' && e.eta_ms >= 0)).toBe(true);
    // Steps of ~30 ms: each estimate is about 30 ms per step left (timers only run late, never early).
    for (const e of withEta) expect(e.eta_ms!).toBeGreaterThanOrEqual((e.max - e.value) * 25);
    const etas = withEta.map((e) => e.eta_ms!);
    expect(etas.at(-1)!).toBeLessThan(etas[0]!);
    expect(progress.at(-1)).toMatchObject({ value: 8, max: 8, eta_ms: 0 });
  });
});
