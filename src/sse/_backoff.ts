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
 * initial delay unless the caller passes another one, such as the server's
 * `retry` field. `maxDelay` bounds every delay, a server's `retry` included.
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
    const cap = Math.min(maxDelay, base * 2 ** this.#attempt);
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

/** Largest delay `setTimeout` honours; larger ones fire at once. */
const MAX_TIMER_DELAY = 2_147_483_647;

/**
 * Validates a duration option in milliseconds: finite, from 0 to the largest
 * delay `setTimeout` honours (2,147,483,647 ms, about 24.8 days).
 */
export function checkDuration(name: string, value: number): number {
  if (
    typeof value !== "number" || !Number.isFinite(value) || value < 0 ||
    value > MAX_TIMER_DELAY
  ) {
    throw new RangeError(
      `Invalid ${name} ${value}: expected a number of milliseconds from 0 ` +
        `to ${MAX_TIMER_DELAY}`,
    );
  }
  return value;
}
