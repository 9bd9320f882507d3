/**
 * Typed errors. `status` is the HTTP status, or 0 when no HTTP answer was involved
 * (client-side validation, connection failures, timeouts, WebSocket errors).
 */

export class LivePortraitError extends Error {
  readonly status: number;
  readonly code: string;
  /** From Retry-After on 429/503, in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(status: number, code: string, message: string,
              options: { cause?: unknown; retryAfterMs?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LivePortraitError";
    this.status = status;
    this.code = code;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** A request or wait that ran past its deadline. */
export class LivePortraitTimeoutError extends LivePortraitError {
  readonly timeoutMs: number;

  constructor(message: string, timeoutMs: number, cause?: unknown) {
    super(0, "timeout", message, { cause });
    this.name = "LivePortraitTimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/** The server could not be reached (refused, reset, DNS). */
export class LivePortraitConnectionError extends LivePortraitError {
  constructor(message: string, cause?: unknown) {
    super(0, "connection_failed", message, { cause });
    this.name = "LivePortraitConnectionError";
  }
}

/** Bad arguments caught before any request was sent. */
export class LivePortraitValidationError extends LivePortraitError {
  constructor(code: string, message: string) {
    super(0, code, message);
    this.name = "LivePortraitValidationError";
  }
}
