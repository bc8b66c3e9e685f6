/**
 * Retry policy: which failures are retried and how long to wait between
 * attempts.
 *
 * @module
 */

import { parseRetryAfter } from "./errors.ts";

/** Sleeps for `ms` milliseconds; rejects with the signal's reason on abort. */
export type SleepFunction = (ms: number, signal?: AbortSignal) => Promise<void>;

/** Timing settings and injectable sources of time and randomness. */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** Upper bound in ms of the first backoff delay; it doubles per retry. */
  baseDelay: number;
  /** Maximum delay in ms of one backoff or rate-limit wait. */
  maxDelay: number;
  /** Returns a number in [0, 1). */
  random: () => number;
  /** Returns the current time in ms since the epoch. */
  now: () => number;
  /** Waits between attempts. */
  sleep: SleepFunction;
}

/** Statuses that mean the request may succeed if sent again. */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([
  429,
  500,
  502,
  503,
  504,
]);

/** Reports whether a response status is worth another attempt. */
export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

/**
 * Returns the backoff before retry number `retry` (0 for the first retry):
 * full jitter, a uniform draw from 0 up to `baseDelay * 2 ** retry`, capped
 * at `maxDelay`.
 */
export function backoffDelay(retry: number, policy: RetryPolicy): number {
  const ceiling = Math.min(policy.maxDelay, policy.baseDelay * 2 ** retry);
  return Math.floor(policy.random() * ceiling);
}

/** Default wait when a 429 carries neither `Retry-After` nor `RateLimit-Reset`. */
const DEFAULT_RATE_LIMIT_WAIT = 1000;

/**
 * Returns the wait in ms that a 429 requests: `Retry-After` (seconds or an
 * HTTP date), else `RateLimit-Reset` (seconds), else one second.
 */
export function rateLimitWait(headers: Headers, now: number): number {
  const retryAfter = parseRetryAfter(headers, now);
  if (retryAfter !== undefined) return retryAfter;
  const reset = Number(headers.get("ratelimit-reset") ?? Number.NaN);
  return Number.isFinite(reset) && reset >= 0
    ? reset * 1000
    : DEFAULT_RATE_LIMIT_WAIT;
}

/**
 * Returns the wait in ms before retrying a 429: {@link rateLimitWait} plus
 * up to 10% jitter, so that clients sharing a window do not retry in step.
 * The jitter never takes the wait past `maxDelay`.
 */
export function rateLimitDelay(headers: Headers, policy: RetryPolicy): number {
  const wait = rateLimitWait(headers, policy.now());
  const jittered = Math.ceil(wait + policy.random() * wait * 0.1);
  return Math.min(jittered, Math.max(wait, policy.maxDelay));
}

/** Sleeps with `setTimeout`, clearing the timer when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
