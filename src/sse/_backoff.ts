/**
 * Exponential backoff with full jitter, and an abortable sleep.
 *
 * @module
 */

/** Settings of {@link Backoff}, all in milliseconds. */
export interface BackoffSettings {
  initialDelay: number;
  maxDelay: number;
  random: () => number;
}

/**
 * Computes retry delays: attempt `n` (from 0) waits a uniformly random time
 * in `[0, cap)`, where `cap = min(maxDelay, base * 2 ** n)` and `base` is the
 * initial delay unless the caller passes another one. A base above
 * `maxDelay` is used as the cap, so a server's longer `retry` wins.
 */
export class Backoff {
  readonly #settings: BackoffSettings;
  #attempt = 0;

  constructor(settings: BackoffSettings) {
    this.#settings = settings;
  }

  /** Number of delays handed out since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** Returns the next delay and counts the attempt. */
  next(base: number = this.#settings.initialDelay): number {
    const { maxDelay, random } = this.#settings;
    const cap = Math.min(Math.max(maxDelay, base), base * 2 ** this.#attempt);
    this.#attempt++;
    return Math.floor(random() * cap);
  }

  /** Starts again from the first attempt. */
  reset(): void {
    this.#attempt = 0;
  }
}

/**
 * Waits `ms` milliseconds, or less when `signal` aborts; it never rejects, so
 * callers check the signal afterwards. The timer is cleared on abort.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Validates a non-negative finite duration option in milliseconds. */
export function checkDuration(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `Invalid ${name} ${value}: expected a non-negative number of milliseconds`,
    );
  }
  return value;
}
