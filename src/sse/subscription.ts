/**
 * A live subscription to Stash change notifications: it connects, parses
 * the event stream, reconnects with backoff, and hands change events to one
 * `for await` loop through a bounded queue.
 *
 * @module
 */

import {
  ConnectionError,
  type RequestContext,
  StashError,
  type StashErrorOptions,
  TimeoutError,
} from "../errors.ts";
import { Backoff, checkDuration, sleep as defaultSleep } from "./_backoff.ts";
import { BoundedQueue } from "./_queue.ts";
import { classifyResponse } from "./_response.ts";
import {
  type ChangeEvent,
  matchesTarget,
  parseChangeEvent,
  type SubscriptionTarget,
} from "./change_event.ts";
import {
  EventStreamError,
  EventStreamParser,
  type ServerSentEvent,
} from "./parser.ts";

export type {
  ChangeAction,
  ChangeEvent,
  SubscriptionTarget,
} from "./change_event.ts";

/**
 * Connection state of a {@link Subscription}:
 *
 * - `connecting`: a request is sent and its response headers have not
 *   arrived. Stash sends no headers until the first matching event, so an
 *   accepted subscription to a quiet key stays here.
 * - `open`: the server responded with an event stream.
 * - `reconnecting`: the connection ended or failed and the subscription is
 *   waiting for the backoff delay before the next request.
 * - `closed`: final, after `close()`, an aborted signal or a permanent error.
 */
export type SubscriptionState =
  | "connecting"
  | "open"
  | "reconnecting"
  | "closed";

/** Policy for a change event that arrives while the queue is full. */
export type OverflowPolicy = "drop-oldest" | "error";

/** Details passed to {@link SubscriptionHooks.onStateChange}. */
export interface StateChangeInfo {
  /** Reconnect attempts started so far, the one now connecting included. */
  reconnects: number;
  /**
   * Why the previous connection ended: set on `reconnecting`, and on
   * `closed` when a permanent error closed the subscription.
   */
  error?: Error;
  /** Milliseconds until the next request; set on `reconnecting` only. */
  delay?: number;
}

/** Details passed to {@link SubscriptionHooks.onOverflow}. */
export interface OverflowInfo {
  /** Change events dropped so far by this subscription. */
  dropped: number;
  /** The queue size that was exceeded. */
  queueSize: number;
}

/**
 * Callbacks of a subscription. A hook that throws closes the subscription,
 * and the `for await` loop rejects with the thrown error.
 */
export interface SubscriptionHooks {
  /**
   * Called on every state change. Events sent while the subscription was
   * reconnecting are lost, because Stash does not replay them, so use the
   * change to `connecting` after `reconnecting` to re-read what matters.
   */
  onStateChange?: (state: SubscriptionState, info: StateChangeInfo) => void;
  /**
   * Called when the queue overflows under the `drop-oldest` policy: at most
   * once between two items taken by the consumer, so resync after it.
   */
  onOverflow?: (info: OverflowInfo) => void;
  /**
   * Called for a `change` event whose data is not a valid change event. The
   * event is skipped and counted in {@link Subscription.invalidEvents}.
   */
  onInvalidEvent?: (error: TypeError, event: ServerSentEvent) => void;
}

/** Options of one subscription, as applications pass them to the client. */
export interface SubscribeOptions extends SubscriptionHooks {
  /** Closes the subscription when aborted; the `for await` loop then ends. */
  signal?: AbortSignal;
  /**
   * Milliseconds without a byte from the server after which the client drops
   * the connection and reconnects; 0 disables it. Stash sends no keepalive,
   * so a quiet stream reconnects every `idleTimeout`, and changes made in the
   * short gap are missed. The time counts from the request, because headers
   * arrive only with the first event.
   *
   * @default {0}
   */
  idleTimeout?: number;
  /**
   * Maximum number of change events held for a consumer that iterates
   * slower than they arrive. The socket is always read at once, so a slow
   * consumer never stalls the server.
   *
   * @default {1000}
   */
  queueSize?: number;
  /**
   * Policy for an event that arrives while the queue is full:
   * `drop-oldest` drops the oldest queued event, counts it in
   * {@link Subscription.dropped} and calls
   * {@link SubscriptionHooks.onOverflow}; `error` closes the subscription,
   * and the `for await` loop rejects with {@link SubscriptionOverflowError}
   * after the queued events.
   *
   * @default {"drop-oldest"}
   */
  overflow?: OverflowPolicy;
  /**
   * Maximum length of one line or event, in UTF-16 code units.
   *
   * @default {1048576}
   */
  maxEventSize?: number;
}

/** Reconnection delays, all in milliseconds. */
export interface ReconnectOptions {
  /**
   * Cap of the first delay. A `retry` field from the server replaces it.
   *
   * @default {1000}
   */
  initialDelay?: number;
  /**
   * Largest cap; each failed attempt doubles the cap up to this value.
   *
   * @default {30000}
   */
  maxDelay?: number;
  /**
   * An attempt that lasted at least this long, from request to end,
   * counts as healthy and resets the delay to the first one. An attempt
   * ended by `idleTimeout` resets it too.
   *
   * @default {60000}
   */
  resetAfter?: number;
}

/**
 * Everything a {@link Subscription} needs from the client that creates it.
 * Applications call the client's `subscribe` methods instead.
 */
export interface SubscriptionInit extends SubscribeOptions {
  /**
   * Sends the subscription request: a GET with the client's auth headers,
   * and `Last-Event-ID` when `lastEventId` is defined. It must not put a
   * timeout on the request, because Stash sends no headers until the first
   * event, and it should abort the request when `signal` aborts.
   */
  connect: (
    signal: AbortSignal,
    lastEventId: string | undefined,
  ) => Promise<Response>;
  /**
   * The keys to yield events for. Events for other keys are dropped, so the
   * request may subscribe to a wider path, such as the parent prefix of a
   * key whose exact subscribe path the server would treat as `/ping`.
   */
  target: SubscriptionTarget;
  /** Request path relative to the base URL, for error messages. */
  path: string;
  /** Reconnection delays. */
  reconnect?: ReconnectOptions;
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
  /**
   * Returns a monotonic time in milliseconds, for idle and healthy periods.
   *
   * @default {performance.now}
   */
  now?: () => number;
}

/** Options of {@link SubscriptionOverflowError}. */
export interface SubscriptionOverflowErrorOptions extends StashErrorOptions {
  /** Change events dropped, the one that did not fit included. */
  dropped: number;
  /** The queue size that was exceeded. */
  queueSize: number;
}

/** A subscription's queue was full under the `error` overflow policy. */
export class SubscriptionOverflowError extends StashError {
  /** Change events dropped, the one that did not fit included. */
  readonly dropped: number;
  /** The queue size that was exceeded. */
  readonly queueSize: number;

  /** Creates an error for an overflowing subscription queue. */
  constructor(message: string, options: SubscriptionOverflowErrorOptions) {
    super(message, options);
    this.name = "SubscriptionOverflowError";
    this.dropped = options.dropped;
    this.queueSize = options.queueSize;
  }
}

type AttemptOutcome =
  | { kind: "retry"; error: Error; minDelay: number }
  | { kind: "fail"; error: Error }
  | { kind: "closed" };

interface Activity {
  last: number;
}

const DEFAULT_QUEUE_SIZE = 1000;
/** Shortest wait after a 429, in milliseconds, even below maxDelay. */
const MIN_RATE_LIMIT_WAIT = 1000;
const DEFAULT_RECONNECT: Required<ReconnectOptions> = {
  initialDelay: 1000,
  maxDelay: 30000,
  resetAfter: 60000,
};

/**
 * A subscription to change events, created by the client's `subscribe`,
 * `subscribePrefix` and `subscribeAll`. It connects at once and reconnects
 * after network errors, a stream that ends, 408, 429 and 5xx, with
 * exponential backoff and full jitter. Any other response stops it, and the
 * `for await` loop rejects with the typed error: `UnauthorizedError` (401),
 * `ForbiddenError` (403) or `ResponseError` (400 and others). A 404, or a
 * success that is not an event stream, raises `UnsupportedError`, because
 * that is what servers without subscriptions (v0.13.0) send.
 *
 * Only one consumer may iterate a subscription. Leaving the `for await` loop
 * early, `close()`, the `signal` option and `await using` all close it.
 *
 * @example Receive the change events of one key
 * ```ts
 * import { Client } from "@stash/client";
 * import { createStashServer } from "@stash/client/testing";
 * import assert from "node:assert/strict";
 *
 * // flushOnSubscribe makes the server respond at once, so the subscription
 * // is open before the first change.
 * const server = createStashServer({ flushOnSubscribe: true });
 * const client = new Client("http://stash.test", { fetch: server.fetch });
 * const sub = client.subscribe("app/config");
 * const events = sub[Symbol.asyncIterator]();
 * const next = events.next();
 * for (let turn = 0; turn < 100 && sub.state !== "open"; turn++) {
 *   await new Promise((resolve) => setTimeout(resolve, 1));
 * }
 * await client.set("app/config", '{"debug":true}', "json");
 * const { value } = await next;
 * assert.equal(value?.key, "app/config");
 * assert.equal(value?.action, "create");
 * await sub.close();
 * await client.close();
 * await server.close();
 * ```
 */
export class Subscription
  implements AsyncIterable<ChangeEvent>, AsyncDisposable {
  readonly #connect: SubscriptionInit["connect"];
  readonly #target: SubscriptionTarget;
  readonly #context: RequestContext;
  readonly #hooks: SubscriptionHooks;
  readonly #signal: AbortSignal | undefined;
  readonly #idleTimeout: number;
  readonly #queueSize: number;
  readonly #overflow: OverflowPolicy;
  readonly #reconnect: Required<ReconnectOptions>;
  readonly #maxEventSize: number | undefined;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #now: () => number;
  readonly #backoff: Backoff;
  readonly #queue: BoundedQueue<ChangeEvent>;
  readonly #lifetime = new AbortController();
  readonly #done: Promise<void>;
  #attempt: AbortController | undefined;
  #state: SubscriptionState = "connecting";
  #reconnects = 0;
  #dropped = 0;
  #invalidEvents = 0;
  #overflowing = false;
  #lastEventId = "";
  #retryBase: number | undefined;
  #iterated = false;

  /**
   * Creates the subscription and starts connecting in a microtask, so hooks
   * never run before the constructor returns.
   *
   * @throws {TypeError} for an empty key or prefix, or an unknown policy.
   * @throws {RangeError} for a negative duration or an invalid queue size.
   */
  constructor(init: SubscriptionInit) {
    this.#connect = init.connect;
    this.#target = checkTarget(init.target);
    this.#context = {
      path: init.path,
      ...(init.target.kind === "key" ? { key: init.target.key } : {}),
    };
    this.#hooks = pickHooks(init);
    this.#signal = init.signal;
    this.#idleTimeout = checkDuration("idleTimeout", init.idleTimeout ?? 0);
    this.#queueSize = checkQueueSize(init.queueSize ?? DEFAULT_QUEUE_SIZE);
    this.#overflow = checkOverflow(init.overflow ?? "drop-oldest");
    this.#reconnect = checkReconnect(init.reconnect ?? {});
    this.#maxEventSize = init.maxEventSize;
    this.#sleep = init.sleep ?? defaultSleep;
    this.#now = init.now ?? (() => performance.now());
    this.#backoff = new Backoff({
      initialDelay: this.#reconnect.initialDelay,
      maxDelay: this.#reconnect.maxDelay,
      random: init.random ?? Math.random,
    });
    this.#queue = new BoundedQueue(this.#queueSize);
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#done = Promise.resolve()
      .then(() => this.#run())
      .catch((error: unknown) => this.#finish(error));
  }

  /** The current connection state. */
  get state(): SubscriptionState {
    return this.#state;
  }

  /** Reconnect attempts started so far. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Change events dropped because the queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** `change` events skipped because their data was invalid. */
  get invalidEvents(): number {
    return this.#invalidEvents;
  }

  /** The last event id the server sent; Stash sends none, so it stays empty. */
  get lastEventId(): string {
    return this.#lastEventId;
  }

  /**
   * Closes the subscription: the `for await` loop ends normally, queued
   * events are discarded, and the pending request, stream and timers are
   * released. The promise resolves when all of them are.
   */
  close(): Promise<void> {
    this.#finish();
    return this.#done;
  }

  /** Closes the subscription, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Returns the iterator of change events. Leaving the loop early closes the
   * subscription.
   *
   * @throws {TypeError} when the subscription is iterated a second time.
   */
  [Symbol.asyncIterator](): AsyncIterator<ChangeEvent, undefined> {
    if (this.#iterated) {
      throw new TypeError(
        `Subscription to ${this.#context.path} is already being iterated: ` +
          "a subscription has one consumer, so create another subscription",
      );
    }
    this.#iterated = true;
    return {
      next: () => {
        this.#overflowing = false;
        return this.#queue.next();
      },
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  #onAbort = (): void => {
    void this.close();
  };

  async #run(): Promise<void> {
    if (this.#signal?.aborted) {
      this.#finish();
      return;
    }
    while (!this.#lifetime.signal.aborted) {
      const started = this.#now();
      const outcome = await this.#attemptOnce();
      if (outcome.kind === "closed" || this.#lifetime.signal.aborted) return;
      if (outcome.kind === "fail") {
        this.#finish(outcome.error);
        return;
      }
      // An idle timeout is no sign of a failing server, so it resets too.
      const healthy = this.#now() - started >= this.#reconnect.resetAfter;
      if (healthy || outcome.error instanceof TimeoutError) {
        this.#backoff.reset();
      }
      await this.#waitToReconnect(outcome.error, outcome.minDelay);
    }
  }

  async #waitToReconnect(error: Error, minDelay: number): Promise<void> {
    const base = this.#retryBase ?? this.#reconnect.initialDelay;
    // A 429's wait raises the delay, and maxDelay bounds it, so that no
    // response can park the subscription for hours. A 429 still waits at
    // least one second, even under a smaller maxDelay.
    const ceiling = Math.max(
      this.#reconnect.maxDelay,
      Math.min(minDelay, MIN_RATE_LIMIT_WAIT),
    );
    const delay = Math.min(
      Math.max(this.#backoff.next(base), minDelay),
      ceiling,
    );
    this.#setState("reconnecting", { error, delay });
    if (this.#lifetime.signal.aborted) return;
    try {
      await this.#sleep(delay, this.#lifetime.signal);
    } catch {
      // An aborted sleep may reject; the loop checks the signal next.
    }
    if (!this.#lifetime.signal.aborted) this.#reconnects++;
  }

  async #attemptOnce(): Promise<AttemptOutcome> {
    const controller = new AbortController();
    this.#attempt = controller;
    const activity: Activity = { last: this.#now() };
    this.#setState("connecting", {});
    const watchdog = this.#watchIdle(controller, activity);
    try {
      return await this.#connectAndRead(controller.signal, activity);
    } finally {
      controller.abort();
      await watchdog;
      this.#attempt = undefined;
    }
  }

  async #connectAndRead(
    signal: AbortSignal,
    activity: Activity,
  ): Promise<AttemptOutcome> {
    if (signal.aborted) return this.#interrupted(signal);
    let response: Response;
    try {
      const lastEventId = this.#lastEventId === ""
        ? undefined
        : this.#lastEventId;
      response = await raceAbort(this.#request(signal, lastEventId), signal);
    } catch (error) {
      if (signal.aborted) return this.#interrupted(signal);
      // The client's transport raises ConnectionError for a failed network
      // and a StashError such as ResponseError for what a retry cannot
      // change: a redirect to another origin, or a fetch that returned no
      // Response.
      if (
        error instanceof StashError && !(error instanceof ConnectionError) &&
        !(error instanceof TimeoutError)
      ) {
        return { kind: "fail", error };
      }
      return this.#networkFailure("failed", error);
    }
    activity.last = this.#now();
    const outcome = await classifyResponse(response, this.#context, signal);
    if (signal.aborted) return this.#interrupted(signal);
    if (outcome.kind !== "stream") return outcome;
    this.#setState("open", {});
    if (outcome.body === null) return this.#ended();
    return await this.#readStream(outcome.body, signal, activity);
  }

  async #request(
    signal: AbortSignal,
    lastEventId: string | undefined,
  ): Promise<Response> {
    return await this.#connect(signal, lastEventId);
  }

  async #readStream(
    body: ReadableStream<Uint8Array>,
    signal: AbortSignal,
    activity: Activity,
  ): Promise<AttemptOutcome> {
    const parser = new EventStreamParser({
      lastEventId: this.#lastEventId,
      ...(this.#maxEventSize === undefined
        ? {}
        : { maxEventSize: this.#maxEventSize }),
    });
    const reader = body.getReader();
    const cancel = (): void => {
      reader.cancel().catch(() => {});
    };
    signal.addEventListener("abort", cancel, { once: true });
    if (signal.aborted) cancel();
    try {
      while (true) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (error) {
          if (signal.aborted) return this.#interrupted(signal);
          return this.#networkFailure("broke off", error);
        }
        if (signal.aborted) return this.#interrupted(signal);
        if (result.done) return this.#ended();
        activity.last = this.#now();
        const failure = this.#handleChunk(parser, result.value);
        // A line over maxEventSize breaks only this connection, so that a
        // misbehaving proxy cannot end a long-running subscription.
        if (failure instanceof EventStreamError) {
          return { kind: "retry", error: failure, minDelay: 0 };
        }
        if (failure !== undefined) return { kind: "fail", error: failure };
      }
    } finally {
      signal.removeEventListener("abort", cancel);
      await reader.cancel().catch(() => {});
    }
  }

  #handleChunk(
    parser: EventStreamParser,
    chunk: Uint8Array,
  ): Error | undefined {
    let failure: Error | undefined;
    try {
      parser.feed(chunk, (event) => {
        failure ??= this.#handleEvent(event);
      });
    } catch (error) {
      failure ??= error instanceof Error
        ? error
        : new StashError(String(error));
    }
    this.#lastEventId = parser.lastEventId;
    this.#retryBase = parser.retry ?? this.#retryBase;
    return failure;
  }

  #handleEvent(event: ServerSentEvent): Error | undefined {
    if (event.type !== "change" || this.#queue.ended) return undefined;
    let change: ChangeEvent;
    try {
      change = parseChangeEvent(event.data);
    } catch (error) {
      this.#invalidEvents++;
      const typeError = error instanceof TypeError
        ? error
        : new TypeError(String(error));
      this.#notify(() => this.#hooks.onInvalidEvent?.(typeError, event));
      return undefined;
    }
    if (!matchesTarget(this.#target, change.key)) return undefined;
    return this.#enqueue(change);
  }

  #enqueue(change: ChangeEvent): Error | undefined {
    if (!this.#queue.full) {
      this.#queue.push(change);
      return undefined;
    }
    this.#dropped++;
    if (this.#overflow === "error") return this.#overflowError();
    this.#queue.dropOldest();
    this.#queue.push(change);
    if (this.#overflowing) return undefined;
    this.#overflowing = true;
    const info = { dropped: this.#dropped, queueSize: this.#queueSize };
    this.#notify(() => this.#hooks.onOverflow?.(info));
    return undefined;
  }

  #overflowError(): SubscriptionOverflowError {
    return new SubscriptionOverflowError(
      `Subscription to ${this.#context.path} fell behind: its queue of ` +
        `${this.#queueSize} events is full; iterate faster, raise queueSize, ` +
        'or use overflow "drop-oldest" and resync on onOverflow',
      {
        method: "GET",
        ...this.#context,
        dropped: this.#dropped,
        queueSize: this.#queueSize,
      },
    );
  }

  async #watchIdle(
    controller: AbortController,
    activity: Activity,
  ): Promise<void> {
    const timeout = this.#idleTimeout;
    if (timeout === 0) return;
    const signal = controller.signal;
    let wait = timeout;
    while (!signal.aborted) {
      try {
        // NOTE: an injected sleep that resolves at once makes this loop spin
        // on microtasks and starve the socket reads; it must really wait.
        await this.#sleep(wait, signal);
      } catch {
        // An aborted sleep may reject; the loop checks the signal next.
      }
      if (signal.aborted) return;
      const quiet = this.#now() - activity.last;
      if (quiet >= timeout) {
        controller.abort(this.#idleError());
        return;
      }
      wait = timeout - quiet;
    }
  }

  #idleError(): TimeoutError {
    return new TimeoutError(
      `Subscription to ${this.#context.path} received nothing for ` +
        `${this.#idleTimeout} ms (idleTimeout); reconnecting`,
      { method: "GET", ...this.#context, timeout: this.#idleTimeout },
    );
  }

  /** The outcome of an attempt whose signal aborted: closed, or idle. */
  #interrupted(signal: AbortSignal): AttemptOutcome {
    if (this.#lifetime.signal.aborted) return { kind: "closed" };
    if (signal.reason instanceof TimeoutError) {
      return { kind: "retry", error: signal.reason, minDelay: 0 };
    }
    return { kind: "closed" };
  }

  #networkFailure(verb: string, cause: unknown): AttemptOutcome {
    const detail = cause instanceof Error ? cause.message : String(cause);
    const error = new ConnectionError(
      `Subscription request GET ${this.#context.path} ${verb}: ${detail}`,
      { method: "GET", ...this.#context, cause },
    );
    return { kind: "retry", error, minDelay: 0 };
  }

  #ended(): AttemptOutcome {
    const error = new ConnectionError(
      `Subscription stream GET ${this.#context.path} was ended by the server`,
      { method: "GET", ...this.#context },
    );
    return { kind: "retry", error, minDelay: 0 };
  }

  #setState(
    state: SubscriptionState,
    info: Omit<StateChangeInfo, "reconnects">,
  ): void {
    if (this.#lifetime.signal.aborted) return;
    this.#state = state;
    const full = { reconnects: this.#reconnects, ...info };
    this.#notify(() => this.#hooks.onStateChange?.(state, full));
  }

  #notify(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.#finish(error);
    }
  }

  /** Enters `closed` once, releasing everything, and ends the queue. */
  #finish(error?: unknown): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#lifetime.abort();
    this.#attempt?.abort();
    this.#signal?.removeEventListener("abort", this.#onAbort);
    let failure = error;
    const info: StateChangeInfo = {
      reconnects: this.#reconnects,
      ...(error instanceof Error ? { error } : {}),
    };
    try {
      this.#hooks.onStateChange?.("closed", info);
    } catch (hookError) {
      failure ??= hookError;
    }
    if (failure === undefined) this.#queue.end();
    else this.#queue.fail(failure);
  }
}

/**
 * Resolves with the response, or rejects as soon as `signal` aborts; a
 * response that arrives after the abort has its body cancelled.
 */
function raceAbort(
  request: Promise<Response>,
  signal: AbortSignal,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      request.then((response) => response.body?.cancel(), () => {})
        .catch(() => {});
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    request.then(
      (response) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) response.body?.cancel().catch(() => {});
        else resolve(response);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function pickHooks(init: SubscriptionHooks): SubscriptionHooks {
  for (const name of ["onStateChange", "onOverflow", "onInvalidEvent"]) {
    const hook = init[name as keyof SubscriptionHooks];
    if (hook !== undefined && typeof hook !== "function") {
      throw new TypeError(
        `Invalid ${name} option: expected a function, got ${typeof hook}`,
      );
    }
  }
  return {
    ...(init.onStateChange ? { onStateChange: init.onStateChange } : {}),
    ...(init.onOverflow ? { onOverflow: init.onOverflow } : {}),
    ...(init.onInvalidEvent ? { onInvalidEvent: init.onInvalidEvent } : {}),
  };
}

function checkTarget(target: SubscriptionTarget): SubscriptionTarget {
  if (target.kind === "key" && target.key === "") {
    throw new TypeError("Invalid subscription target: the key is empty");
  }
  if (target.kind === "prefix" && target.prefix.replace(/\/+$/, "") === "") {
    throw new TypeError(
      "Invalid subscription target: the prefix is empty; subscribe to all keys instead",
    );
  }
  return target;
}

function checkQueueSize(size: number): number {
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new RangeError(
      `Invalid queueSize ${size}: expected a positive integer`,
    );
  }
  return size;
}

function checkOverflow(policy: string): OverflowPolicy {
  if (policy === "drop-oldest" || policy === "error") return policy;
  throw new TypeError(
    `Invalid overflow policy ${
      JSON.stringify(policy)
    }: expected "drop-oldest" or "error"`,
  );
}

function checkReconnect(options: ReconnectOptions): Required<ReconnectOptions> {
  const merged = { ...DEFAULT_RECONNECT, ...options };
  checkDuration("reconnect.maxDelay", merged.maxDelay);
  checkDuration("reconnect.resetAfter", merged.resetAfter);
  if (checkDuration("reconnect.initialDelay", merged.initialDelay) === 0) {
    throw new RangeError(
      "Invalid reconnect.initialDelay 0: expected a positive number of milliseconds",
    );
  }
  return merged;
}

/**
 * Validates subscription options and reconnection delays without creating a
 * subscription, so that a client can reject bad defaults when it is built.
 *
 * @throws {TypeError} for a hook that is not a function or an unknown policy.
 * @throws {RangeError} for an invalid duration or queue size.
 */
export function checkSubscribeOptions(
  options: SubscribeOptions,
  reconnect: ReconnectOptions = {},
): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Invalid subscription options: expected an object, got ${
        options === null ? "null" : typeof options
      }`,
    );
  }
  pickHooks(options);
  checkDuration("idleTimeout", options.idleTimeout ?? 0);
  checkQueueSize(options.queueSize ?? DEFAULT_QUEUE_SIZE);
  checkOverflow(options.overflow ?? "drop-oldest");
  checkReconnect(reconnect);
}
