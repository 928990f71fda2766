import type { ErrorRequestHandler, Response } from 'express';
import { StudioError, type ErrorCode } from '../../nodes/api/errors.ts';
import { createLogger } from '../log.ts';

const log = createLogger('http');

/** Codes of the API's answers: the engine's, plus `UNAUTHORIZED` (401) for a missing access token. */
export type ApiErrorCode = ErrorCode | 'UNAUTHORIZED';

/** The one error shape of the API: `{ error: { code, message } }` plus optional extra fields. */
export function sendError(res: Response, status: number, code: ApiErrorCode, message: string, extra: Record<string, unknown> = {}): void {
  res.status(status).json({ error: { code, message }, ...extra });
}

export function statusForCode(code: ErrorCode): number {
  switch (code) {
    case 'TOO_LARGE':
      return 413;
    case 'NOT_FOUND':
      return 404;
    case 'QUEUE_FULL':
      return 429;
    case 'BAD_PATH':
    case 'BAD_IMAGE':
    case 'BAD_INPUT':
    case 'VALIDATION':
      return 400;
    default:
      // NODE_FAILED / INTERRUPTED belong to prompts, not requests: reaching here is a server fault.
      return 500;
  }
}

/** Errors thrown by body parsers and express itself carry `status` and, for body parsers, `type`. */
interface HttpError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
  message?: string;
}

/**
 * Last middleware: StudioErrors keep their code, body-parser errors become 400/413, and anything
 * else becomes a 500 whose message says nothing about the internals (the log has the stack).
 */
export const errorMiddleware: ErrorRequestHandler = (err: unknown, req, res, next) => {
  if (res.headersSent) {
    // Too late for a JSON answer; let express cut the connection.
    next(err);
    return;
  }
  if (err instanceof StudioError) {
    const status = statusForCode(err.code);
    if (status === 500) log.error(`${req.method} ${req.path}`, err);
    sendError(res, status, status === 500 ? 'INTERNAL' : err.code, status === 500 ? 'internal server error' : err.message);
    return;
  }
  const httpErr = (typeof err === 'object' && err !== null ? err : {}) as HttpError;
  const status = httpErr.status ?? httpErr.statusCode;
  if (httpErr.type === 'entity.too.large' || status === 413) {
    sendError(res, 413, 'TOO_LARGE', 'the request body is larger than this server accepts');
    return;
  }
  if (httpErr.type === 'entity.parse.failed') {
    sendError(res, 400, 'BAD_INPUT', 'the request body is not valid JSON');
    return;
  }
  if (status !== undefined && status >= 400 && status < 500) {
    // Client errors raised by express or body parsers (bad URL encoding, wrong charset...).
    sendError(res, status, 'BAD_INPUT', httpErr.expose && httpErr.message ? httpErr.message : 'bad request');
    return;
  }
  log.error(`${req.method} ${req.path} failed`, err);
  sendError(res, 500, 'INTERNAL', 'internal server error');
};
