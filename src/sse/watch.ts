/**
 * Watching one key's value: a subscription reports when the key changed, and a
 * read fetches the value, because Stash change events carry none.
 *
 * @module
 */

import {
  ConnectionError,
  RateLimitError,
  ResponseError,
  TimeoutError,
} from "../errors.ts";
import { Backoff, checkDuration, sleep as defaultSleep } from "./_backoff.ts";
import type {
  ReconnectOptions,
  StateChangeInfo,
  Subscription,
  SubscriptionHooks,
  SubscriptionState,
} from "./subscription.ts";

/**
 * Returns a promise with its resolve and reject functions, as
 * `Promise.withResolvers` does where the runtime has it (Node 22 and later,
 * Deno).
 */
function withResolvers<T>(): PromiseWithResolvers<T> {
  let resolve!: (value: T | PromiseLike<T>) => void;
  let reject!: (reason?: unknown) => void;
  const promise = new Promise<T>((onResolve, onReject) => {
    resolve = onResolve;
    reject = onReject;
  });
  return { promise, resolve, reject };
}

/** A key's value at one moment, as {@link Watch} yields it. */
export type WatchUpdate =
  | { key: string; exists: true; value: string }
  | { key: string; exists: false };

/** The result of reading the watched key. */
export type KeyRead = { exists: true; value: string } | { exists: false };

/** Options of a watch, as applications pass them to the client. */
export interface WatchOptions {
  /** Closes the watch when aborted; the `for await` loop then ends. */
  signal?: AbortSignal;
  /** Called on every state change of the underlying subscription. */
  onStateChange?: (state: SubscriptionState, info: StateChangeInfo) => void;
  /**
   * Called when a read fails with an error that is retried, with the delay
   * in milliseconds before the next read.
   */
  onReadError?: (error: unknown, delay: number) => void;
  /**
   * Milliseconds after each subscription request at which the key is read
   * again. Stash sends no headers until the first event, so the watch cannot
   * learn when the server registered the subscription. This read catches
   * changes made while the request was on its way.
   *
   * @default {1000}
   */
  resyncDelay?: number;
}

/**
 * Everything a {@link Watch} needs from the client that creates it.
 * Applications call the client's `watch` method instead.
 */
export interface WatchInit extends WatchOptions {
  /** The effective key, for the yielded updates. */
  key: string;
  /**
   * Creates the subscription for the key with the given hooks merged into
   * the caller's subscription options. The watch closes it.
   */
  subscribe: (hooks: SubscriptionHooks) => Subscription;
  /** Reads the key, honouring `signal`. A missing key is `exists: false`. */
  read: (signal: AbortSignal) => Promise<KeyRead>;
  /**
   * Delays between retried reads; `resetAfter` is not used.
   *
   * @default {{ initialDelay: 1000, maxDelay: 30000 }}
   */
  readRetry?: ReconnectOptions;
  /**
   * Decides whether a failed read is retried. Other errors end the watch.
   *
   * @default {isTransientError}
   */
  isRetryable?: (error: unknown) => boolean;
  /**
   * Waits `ms` milliseconds or until `signal` aborts; injectable for tests.
   *
   * @default {a setTimeout-based sleep}
   */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /**
   * Returns a number in `[0, 1)` for the backoff jitter.
   *
   * @default {Math.random}
   */
  random?: () => number;
}

/**
 * Reports whether an error is worth retrying: a connection failure, a
 * timeout, a rate limit, or a 408 or 5xx response.
 */
export function isTransientError(error: unknown): boolean {
  if (error instanceof ConnectionError) return true;
  if (error instanceof TimeoutError) return true;
  if (error instanceof RateLimitError) return true;
  return error instanceof ResponseError &&
    (error.status === 408 || error.status >= 500);
}

/**
 * Creates a {@link Watch}; the same as `new Watch(init)`.
 *
 * @example Watch a key that never changes
 * ```ts
 * import assert from "node:assert/strict";
 * import { Subscription } from "./subscription.ts";
 * import { watchKey } from "./watch.ts";
 *
 * const watch = watchKey({
 *   key: "app/a",
 *   subscribe: (hooks) =>
 *     new Subscription({
 *       ...hooks,
 *       connect: (signal) => new Promise(() => {}),
 *       target: { kind: "key", key: "app/a" },
 *       path: "/kv/subscribe/app%2Fa",
 *     }),
 *   read: () => Promise.resolve({ exists: true, value: "v1" }),
 * });
 * for await (const update of watch) {
 *   assert.deepEqual(update, { key: "app/a", exists: true, value: "v1" });
 *   break;
 * }
 * ```
 */
export function watchKey(init: WatchInit): Watch {
  return new Watch(init);
}

/**
 * An async iterable of one key's value. It yields the current value (or
 * that the key is absent) first, then the value after each change.
 *
 * - Changes in a burst may be coalesced into one update, but the latest
 *   value is always yielded, and the same value never twice in a row.
 * - The key is read again after each subscription request (see
 *   {@link WatchOptions.resyncDelay}), when the stream opens, and after the
 *   subscription dropped or skipped events, so changes made while it was
 *   reconnecting are not missed.
 * - Transient read errors are retried with backoff (see
 *   {@link isTransientError}). Other read errors and subscription errors end
 *   the watch, and the `for await` loop rejects with them.
 *
 * Only one consumer may iterate a watch. Leaving the loop early, `close()`,
 * the `signal` option and `await using` all close it.
 */
export class Watch implements AsyncIterable<WatchUpdate>, AsyncDisposable {
  readonly #key: string;
  readonly #read: WatchInit["read"];
  readonly #userHooks: WatchOptions;
  readonly #signal: AbortSignal | undefined;
  readonly #resyncDelay: number;
  readonly #isRetryable: (error: unknown) => boolean;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #readBackoff: Backoff;
  readonly #lifetime = new AbortController();
  readonly #subscription: Subscription;
  readonly #done: Promise<unknown>;
  #dirty = true;
  #wake: (() => void) | undefined;
  #resyncTask: Promise<void> | undefined;
  #subscriptionClosed: Promise<void> | undefined;
  #resyncAgain = false;
  #pending: WatchUpdate | undefined;
  #last: WatchUpdate | undefined;
  #waiter:
    | PromiseWithResolvers<IteratorResult<WatchUpdate, undefined>>
    | undefined;
  #failure: { error: unknown } | undefined;
  #closed = false;
  #iterated = false;

  /**
   * Creates the watch, its subscription and its first read.
   *
   * @throws {RangeError} for a negative `resyncDelay`.
   */
  constructor(init: WatchInit) {
    this.#key = init.key;
    this.#read = init.read;
    this.#userHooks = init;
    this.#signal = init.signal;
    this.#resyncDelay = checkDuration("resyncDelay", init.resyncDelay ?? 1000);
    this.#isRetryable = init.isRetryable ?? isTransientError;
    this.#sleep = init.sleep ?? defaultSleep;
    this.#readBackoff = new Backoff({
      initialDelay: init.readRetry?.initialDelay ?? 1000,
      maxDelay: init.readRetry?.maxDelay ?? 30000,
      random: init.random ?? Math.random,
    });
    this.#subscription = init.subscribe({
      onStateChange: (state, info) => this.#onStateChange(state, info),
      onOverflow: () => this.#markDirty(),
      onInvalidEvent: () => this.#markDirty(),
    });
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#done = Promise.all([this.#consumeEvents(), this.#readLoop()]);
  }

  /** The state of the underlying subscription. */
  get state(): SubscriptionState {
    return this.#subscription.state;
  }

  /** Reconnect attempts of the underlying subscription. */
  get reconnects(): number {
    return this.#subscription.reconnects;
  }

  /**
   * Closes the watch and its subscription: the `for await` loop ends
   * normally, and the promise resolves once reads and timers are released.
   */
  async close(): Promise<void> {
    this.#finish(undefined);
    await this.#done;
    await this.#subscriptionClosed;
    await this.#resyncTask;
  }

  /** Closes the watch, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Returns the iterator of updates. Leaving the loop early closes the
   * watch.
   *
   * @throws {TypeError} when the watch is iterated a second time.
   */
  [Symbol.asyncIterator](): AsyncIterator<WatchUpdate, undefined> {
    if (this.#iterated) {
      throw new TypeError(
        `Watch of key ${JSON.stringify(this.#key)} is already being ` +
          "iterated: a watch has one consumer, so create another watch",
      );
    }
    this.#iterated = true;
    return {
      next: () => this.#next(),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  #onAbort = (): void => {
    void this.close();
  };

  #onStateChange(state: SubscriptionState, info: StateChangeInfo): void {
    if (state === "connecting") this.#scheduleResync();
    if (state === "open") this.#markDirty();
    this.#userHooks.onStateChange?.(state, info);
  }

  async #consumeEvents(): Promise<void> {
    try {
      for await (const _event of this.#subscription) this.#markDirty();
      this.#finish(undefined);
    } catch (error) {
      this.#finish({ error });
    }
  }

  async #readLoop(): Promise<void> {
    // Start in a microtask so no read runs before the constructor returns.
    await Promise.resolve();
    if (this.#signal?.aborted) this.#finish(undefined);
    while (!this.#closed) {
      if (!this.#dirty) await this.#waitDirty();
      if (this.#closed) return;
      const result = await this.#readWithRetry();
      if (result === undefined) return;
      this.#offer(result);
    }
  }

  async #readWithRetry(): Promise<KeyRead | undefined> {
    this.#readBackoff.reset();
    while (!this.#closed) {
      this.#dirty = false;
      try {
        return await abortable(
          this.#read(this.#lifetime.signal),
          this.#lifetime.signal,
        );
      } catch (error) {
        if (this.#closed) return undefined;
        if (!this.#isRetryable(error)) {
          this.#finish({ error });
          return undefined;
        }
        await this.#waitToRetry(error);
      }
    }
    return undefined;
  }

  async #waitToRetry(error: unknown): Promise<void> {
    const delay = this.#readBackoff.next();
    try {
      this.#userHooks.onReadError?.(error, delay);
    } catch (hookError) {
      this.#finish({ error: hookError });
      return;
    }
    try {
      await this.#sleep(delay, this.#lifetime.signal);
    } catch {
      // An aborted sleep may reject; the loop checks the state next.
    }
  }

  #waitDirty(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  #markDirty(): void {
    this.#dirty = true;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #scheduleResync(): void {
    if (this.#resyncTask !== undefined) {
      this.#resyncAgain = true;
      return;
    }
    this.#resyncTask = this.#resyncAfterDelay().finally(() => {
      this.#resyncTask = undefined;
    });
  }

  async #resyncAfterDelay(): Promise<void> {
    do {
      this.#resyncAgain = false;
      try {
        await this.#sleep(this.#resyncDelay, this.#lifetime.signal);
      } catch {
        // An aborted sleep may reject; the loop checks the state next.
      }
      if (this.#closed) return;
      this.#markDirty();
    } while (this.#resyncAgain);
  }

  #offer(result: KeyRead): void {
    const update: WatchUpdate = result.exists
      ? { key: this.#key, exists: true, value: result.value }
      : { key: this.#key, exists: false };
    if (sameUpdate(update, this.#last)) {
      this.#pending = undefined;
      return;
    }
    const waiter = this.#waiter;
    if (waiter === undefined) {
      this.#pending = update;
      return;
    }
    this.#waiter = undefined;
    this.#last = update;
    waiter.resolve({ done: false, value: update });
  }

  #next(): Promise<IteratorResult<WatchUpdate, undefined>> {
    const pending = this.#pending;
    if (pending !== undefined) {
      this.#pending = undefined;
      this.#last = pending;
      return Promise.resolve({ done: false, value: pending });
    }
    if (this.#failure !== undefined) {
      const { error } = this.#failure;
      this.#failure = undefined;
      return Promise.reject(error);
    }
    if (this.#closed) return Promise.resolve({ done: true, value: undefined });
    this.#waiter ??= withResolvers();
    return this.#waiter.promise;
  }

  /** Closes once; `failure` set means the loop rejects with its error. */
  #finish(failure: { error: unknown } | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#lifetime.abort();
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#markDirty();
    if (failure === undefined) this.#pending = undefined;
    this.#subscriptionClosed = this.#subscription.close();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (failure !== undefined && waiter !== undefined) {
      waiter.reject(failure.error);
    } else {
      if (failure !== undefined) this.#failure = failure;
      waiter?.resolve({ done: true, value: undefined });
    }
  }
}

function sameUpdate(a: WatchUpdate, b: WatchUpdate | undefined): boolean {
  if (b === undefined || a.exists !== b.exists) return false;
  return !a.exists || !b.exists || a.value === b.value;
}

/** Resolves like `promise`, or rejects as soon as `signal` aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => {
      signal.removeEventListener("abort", onAbort);
    });
  });
}
