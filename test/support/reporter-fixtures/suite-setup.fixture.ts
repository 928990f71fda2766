import { beforeAll, describe, expect, it } from 'vitest';

describe('a suite whose setup throws', () => {
  beforeAll(() => {
    throw new Error('setup failed');
  });
  for (let i = 0; i < 5; i++) it(`test ${i}`, () => expect(i).toBe(i));
});
