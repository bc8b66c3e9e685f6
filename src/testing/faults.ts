/**
 * Fault injection for the in-process Stash server: rules that match requests
 * and replace, delay, stall, drip, break or reject their responses.
 *
 * @module
 */

import type { StreamFault } from "./sse_hub.ts";

export type { StreamFault } from "./sse_hub.ts";

/** Fault that returns the given status, headers and body in place of the server's response. */
export interface RespondFault {
  /** Discriminant. */
  type: "respond";
  /** HTTP status. */
  status: number;
  /**
   * Response headers, sent as given (no common headers are added).
   *
   * @default {{}}
   */
  headers?: ConstructorParameters<typeof Headers>[0];
  /**
   * Response body.
   *
   * @default {null}
   */
  body?: string | Uint8Array | null;
}

/** Waits before the server handles the request. */
export interface DelayFault {
  /** Discriminant. */
  type: "delay";
  /** Wait in milliseconds; aborting the request or closing the server ends it. */
  ms: number;
}

/** Sends the server's status and headers, then stops the body. */
export interface StallFault {
  /** Discriminant. */
  type: "stall";
  /**
   * Body bytes sent before the stall.
   *
   * @default {0}
   */
  afterBytes?: number;
}

/** Sends the server's body one byte at a time. */
export interface DripFault {
  /** Discriminant. */
  type: "drip";
  /** Pause before each byte, in milliseconds. */
  intervalMs: number;
}

/** Errors the body stream part-way, like a connection reset mid-body. */
export interface ErrorBodyFault {
  /** Discriminant. */
  type: "errorBody";
  /**
   * Body bytes sent before the error.
   *
   * @default {half the body, rounded down}
   */
  afterBytes?: number;
}

/**
 * Fails the exchange before any headers: the injected `fetch` and `handle()`
 * reject with a `TypeError`, like a refused or reset connection. Through
 * `listen()` the client gets an empty 500 instead, because `Deno.serve`
 * cannot reset a connection before sending headers.
 */
export interface RejectFault {
  /** Discriminant. */
  type: "reject";
  /**
   * The error message.
   *
   * @default {"connection refused"}
   */
  message?: string;
}

/** Fault that returns a custom function's response in place of the server's. */
export interface HandlerFault {
  /** Discriminant. */
  type: "handler";
  /** Receives the request (its body already recorded and re-attached). */
  handler: (request: Request) => Response | Promise<Response>;
}

/** Action of a fault rule on a matching request. */
export type FaultAction =
  | RespondFault
  | DelayFault
  | StallFault
  | DripFault
  | ErrorBodyFault
  | RejectFault
  | HandlerFault
  | StreamFault;

/** Fault rule: a request matcher, a use count and an action. */
export interface FaultRule {
  /**
   * Methods to match, case-insensitive.
   *
   * @default {every method}
   */
  method?: string | readonly string[];
  /**
   * The request path as received (still percent-encoded, without the
   * query): a string matches exactly, a RegExp is tested, a function decides.
   *
   * @default {every path}
   */
  path?: string | RegExp | ((path: string, request: Request) => boolean);
  /**
   * How many matching requests the rule applies to before it is removed;
   * `Infinity` keeps it.
   *
   * @default {1}
   */
  times?: number;
  /** The fault. */
  action: FaultAction;
}

interface ActiveRule {
  rule: FaultRule;
  remaining: number;
}

/** The fault rules of one server, checked in the order they were added. */
export class Faults {
  #rules: ActiveRule[] = [];

  /** Adds a rule; the first rule added that matches a request applies. */
  add(rule: FaultRule): void {
    const remaining = rule.times ?? 1;
    if (!(remaining >= 1)) {
      throw new RangeError(
        `Invalid fault times ${remaining}: expected a count of at least 1`,
      );
    }
    this.#rules.push({ rule, remaining });
  }

  /** Removes every rule. */
  clear(): void {
    this.#rules = [];
  }

  /** The number of rules that have not used up their count. */
  get size(): number {
    return this.#rules.length;
  }

  /**
   * Finds the first rule matching the request, uses one of its count and
   * returns its action.
   */
  take(request: Request, path: string): FaultAction | undefined {
    const index = this.#rules.findIndex(({ rule }) =>
      matchesMethod(rule, request.method) && matchesPath(rule, path, request)
    );
    const active = this.#rules[index];
    if (active === undefined) return undefined;
    active.remaining--;
    if (active.remaining <= 0) this.#rules.splice(index, 1);
    return active.rule.action;
  }
}

function matchesMethod(rule: FaultRule, method: string): boolean {
  if (rule.method === undefined) return true;
  const methods = typeof rule.method === "string" ? [rule.method] : rule.method;
  return methods.some((m) => m.toUpperCase() === method.toUpperCase());
}

function matchesPath(rule: FaultRule, path: string, request: Request): boolean {
  const matcher = rule.path;
  if (matcher === undefined) return true;
  if (typeof matcher === "string") return matcher === path;
  if (matcher instanceof RegExp) {
    matcher.lastIndex = 0;
    return matcher.test(path);
  }
  return matcher(path, request);
}

/** Builds the response of a `respond` fault. */
export function respondWith(fault: RespondFault): Response {
  const body = fault.body ?? null;
  return new Response(body === null ? null : body as BodyInit, {
    status: fault.status,
    headers: fault.headers ?? {},
  });
}

/** Waits `ms` milliseconds; rejects with the reason when `signal` aborts. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Rebuilds `response` around a new body stream made from its bytes.
 * `makeBody` receives the whole original body.
 */
async function replaceBody(
  response: Response,
  makeBody: (bytes: Uint8Array) => ReadableStream<Uint8Array>,
): Promise<Response> {
  if (response.body === null) return response;
  const bytes = new Uint8Array(await response.arrayBuffer());
  return new Response(makeBody(bytes), {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

/**
 * Applies a `stall` fault: the first bytes, then nothing until the request
 * aborts or the server closes, which errors the stream.
 */
export function stallBody(
  response: Response,
  fault: StallFault,
  signal: AbortSignal,
): Promise<Response> {
  return replaceBody(response, (bytes) => {
    let onAbort = () => {};
    return new ReadableStream<Uint8Array>({
      start(controller) {
        const head = bytes.subarray(0, fault.afterBytes ?? 0);
        if (head.length > 0) controller.enqueue(head);
        onAbort = () => controller.error(abortError(signal));
        if (signal.aborted) onAbort();
        else signal.addEventListener("abort", onAbort, { once: true });
      },
      cancel() {
        signal.removeEventListener("abort", onAbort);
      },
    });
  });
}

/** Applies a `drip` fault: one byte per pull, each after `intervalMs`. */
export function dripBody(
  response: Response,
  fault: DripFault,
  signal: AbortSignal,
): Promise<Response> {
  return replaceBody(response, (bytes) => {
    let offset = 0;
    const cancelled = new AbortController();
    const stop = AbortSignal.any([signal, cancelled.signal]);
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          await delay(fault.intervalMs, stop);
        } catch {
          if (!cancelled.signal.aborted) controller.error(abortError(signal));
          return;
        }
        if (offset >= bytes.length) {
          controller.close();
          return;
        }
        controller.enqueue(bytes.slice(offset, offset + 1));
        offset++;
      },
      cancel() {
        cancelled.abort();
      },
    }, { highWaterMark: 0 });
  });
}

/** Applies an `errorBody` fault: the first bytes, then a stream error. */
export function errorBody(
  response: Response,
  fault: ErrorBodyFault,
): Promise<Response> {
  return replaceBody(response, (bytes) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        const cut = fault.afterBytes ?? Math.floor(bytes.length / 2);
        const head = bytes.subarray(0, cut);
        if (head.length > 0) controller.enqueue(head);
        controller.error(new TypeError("connection reset by peer"));
      },
    }));
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new TypeError("connection closed");
}
