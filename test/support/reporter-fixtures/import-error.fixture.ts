import { expect, it } from 'vitest';

throw new Error('the file cannot be loaded');
it('is never collected', () => expect(1).toBe(1));
