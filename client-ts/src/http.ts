/**
 * One HTTP exchange with deadline, retry on 429/503 (honouring Retry-After) and
 * mapping of every failure to a typed LivePortraitError.
 */
import { LivePortraitConnectionError, LivePortraitError, LivePortraitTimeoutError } from "./errors.js";
import type { Logger } from "./logger.js";

export interface TransportOptions {
  baseUrl: string;
  timeoutMs: number;
  maxRetries: number;
  /** Upper bound for one Retry-After wait; longer waits give up at once. */
  maxRetryDelayMs: number;
  logger: Logger;
  fetchImpl: typeof fetch;
  /** Sent as `Authorization: Bearer <apiKey>` on every request. */
  apiKey?: string;
}

export interface RequestSpec {
  method: "GET" | "POST" | "DELETE";
  path: string;
  /** A factory, so that each retry sends a fresh body. */
  body?: () => FormData;
  accept?: string;
  /** A bearer credential for this request only (a session token), instead of the API key. */
  bearer?: string;
}

const RETRYABLE = new Set([429, 503]);
const DEFAULT_RETRY_MS = 1000;

/** Retry-After is either delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

async function errorFromResponse(res: Response): Promise<LivePortraitError> {
  const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
  const text = await res.text().catch(() => "");
  let code = `http_${res.status}`;
  let message = text.slice(0, 500) || res.statusText || `HTTP ${res.status}`;
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === "string") code = body.error.code;
    if (typeof body.error?.message === "string") message = body.error.message;
  } catch {
    // Not JSON (a proxy, or a limit hit before our handler): keep the status-derived code.
    if (res.status === 413) code = "file_too_large";
  }
  return new LivePortraitError(res.status, code, message, retryAfterMs === undefined ? {} : { retryAfterMs });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError");
}

export class HttpTransport {
  readonly baseUrl: string;

  constructor(private readonly opts: TransportOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
  }

  get hasApiKey(): boolean {
    return this.opts.apiKey !== undefined;
  }

  get timeoutMs(): number {
    return this.opts.timeoutMs;
  }

  url(path: string): string {
    return `${this.baseUrl}${path}`;
  }

  /** Sends the request and reads the answer with `read`, all under one deadline per attempt. */
  async send<T>(spec: RequestSpec, read: (res: Response) => Promise<T>,
                timeoutMs = this.opts.timeoutMs): Promise<T> {
    const { logger, maxRetries, maxRetryDelayMs } = this.opts;
    for (let attempt = 0; ; attempt++) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      const started = Date.now();
      try {
        const headers: Record<string, string> = {};
        if (spec.accept !== undefined) headers["accept"] = spec.accept;
        const bearer = spec.bearer ?? this.opts.apiKey;
        if (bearer !== undefined) headers["authorization"] = `Bearer ${bearer}`;
        const init: RequestInit = { method: spec.method, headers, signal: controller.signal };
        if (spec.body !== undefined) init.body = spec.body();
        let res: Response;
        try {
          res = await this.opts.fetchImpl(this.url(spec.path), init);
        } catch (err) {
          if (isAbort(err)) throw err;
          throw new LivePortraitConnectionError(
            `cannot reach ${this.baseUrl} (${spec.method} ${spec.path}): ${describeCause(err)}`, err);
        }
        logger.debug(`${spec.method} ${spec.path} -> ${res.status}`, { ms: Date.now() - started, attempt });
        if (res.ok) return await read(res);
        const error = await errorFromResponse(res);
        const delay = error.retryAfterMs ?? DEFAULT_RETRY_MS;
        if (RETRYABLE.has(res.status) && attempt < maxRetries && delay <= maxRetryDelayMs) {
          logger.warn(`${spec.method} ${spec.path}: ${res.status} ${error.code}, retrying in ${delay} ms`,
                      { attempt: attempt + 1, maxRetries });
          clearTimeout(timer);
          await sleep(delay);
          continue;
        }
        logger.error(`${spec.method} ${spec.path} failed: ${res.status} ${error.code}: ${error.message}`);
        throw error;
      } catch (err) {
        if (isAbort(err)) {
          throw new LivePortraitTimeoutError(
            `${spec.method} ${spec.path} timed out after ${timeoutMs} ms`, timeoutMs, err);
        }
        throw err;
      } finally {
        clearTimeout(timer);
      }
    }
  }

  json<T>(spec: RequestSpec, timeoutMs?: number): Promise<T> {
    return this.send(spec, async (res) => {
      const text = await res.text();
      try {
        return JSON.parse(text) as T;
      } catch (err) {
        throw new LivePortraitError(res.status, "invalid_response",
                                    `expected JSON from ${spec.path}, got: ${text.slice(0, 200)}`, { cause: err });
      }
    }, timeoutMs);
  }
}

function describeCause(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (cause !== undefined && typeof cause.code === "string") return cause.code;
  if (cause !== undefined && typeof cause.message === "string") return cause.message;
  return err instanceof Error ? err.message : String(err);
}
