/** The fixed set of error codes; callers branch on `code`, people read `message`. */
export const ERROR_CODES = [
  'BAD_PATH',
  'BAD_IMAGE',
  'TOO_LARGE',
  'NOT_FOUND',
  'BAD_INPUT',
  'VALIDATION',
  'NODE_FAILED',
  'INTERRUPTED',
  'QUEUE_FULL',
  'FORBIDDEN',
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class StudioError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StudioError';
  }
}

/**
 * Thrown by a node when one of its inputs is unusable. The executor adds the node's name and id,
 * so the message a person reads names the node, the input and what was wrong.
 */
export class InputError extends StudioError {
  constructor(
    readonly input: string,
    reason: string,
    code: ErrorCode = 'BAD_INPUT',
  ) {
    super(code, `input '${input}': ${reason}`);
    this.name = 'InputError';
  }
}

export class InterruptedError extends StudioError {
  constructor() {
    super('INTERRUPTED', 'interrupted');
    this.name = 'InterruptedError';
  }
}
