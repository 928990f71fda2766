import { beforeAll, expect, it } from 'vitest';

beforeAll(() => {
  throw new Error('file setup failed');
});
it('never runs', () => expect(1).toBe(1));
it('never runs either', () => expect(1).toBe(1));
