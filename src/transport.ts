/**
 * One HTTP exchange with retries: a per-attempt deadline combined with the
 * caller's signal, same-origin redirects, and the body read under the same
 * deadline. Nothing here depends on keys or formats.
 *
 * @module
 */

import {
  ClosedError,
  ConnectionError,
  quoteKey,
  ResponseError,
  StashError,
  TimeoutError,
} from "./errors.ts";
import {
  backoffDelay,
  isRetryableStatus,
  rateLimitDelay,
  rateLimitWait,
  type RetryPolicy,
} from "./retry.ts";

/** The signature of `fetch`, for injecting another implementation. */
export type FetchFunction = (
  input: URL | Request | string,
  init?: RequestInit,
) => Promise<Response>;

/** Details passed to the `onRetry` hook before each retry. */
export interface RetryEvent {
  /** HTTP method of the request. */
  method: string;
  /** Request path relative to the base URL. */
  path: string;
  /** The retry about to start: 1 for the first retry. */
  retry: number;
  /** Milliseconds the client waits before the retry. */
  delay: number;
  /** The status that caused the retry, when a response arrived. */
  status?: number;
  /** The failure that caused the retry, when no response arrived. */
  error?: StashError;
}

/** Settings of a {@link Transport}. */
export interface TransportOptions {
  /** Base URL without a trailing slash in its path. */
  baseUrl: URL;
  /** The fetch implementation. */
  fetch: FetchFunction;
  /** Headers sent with every request, credentials included. */
  headers: Headers;
  /** Per-attempt deadline in ms, covering connect, headers and body. */
  timeout: number;
  /** Retry counts, delays and injectable time. */
  policy: RetryPolicy;
  /** Maximum same-origin redirects followed within one attempt. */
  maxRedirects: number;
  /** Called before each retry. */
  onRetry?: (event: RetryEvent) => void;
}

/** One request to send. */
export interface RequestSpec {
  /** HTTP method. */
  method: "GET" | "HEAD" | "PUT" | "DELETE";
  /** Path and query relative to the base URL, starting with `/`. */
  path: string;
  /** Request body, re-sent unchanged on retries. */
  body?: Uint8Array<ArrayBuffer>;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** The caller's signal. */
  signal?: AbortSignal | undefined;
  /** The key the request is about, for error messages. */
  key?: string;
  /** Overrides the policy's retry count for this request. */
  retries?: number;
}

/** A response with its body read, and what happened on the way. */
export interface TransportResponse {
  /** HTTP status code of the final response. */
  status: number;
  /** Headers of the final response. */
  headers: Headers;
  /** The body of the final response. */
  body: Uint8Array;
  /** Attempts made, the final one included. */
  attempts: number;
  /**
   * Whether an earlier attempt failed in a way that leaves open whether the
   * server applied it: a lost connection, a timeout or a 5xx.
   */
  earlierAttemptMayHaveApplied: boolean;
}

/** Marks an abort caused by the per-attempt deadline. */
const DEADLINE = Symbol("deadline");

/** Sends requests with retries; one instance per client. */
export class Transport {
  readonly #options: TransportOptions;
  readonly #basePath: string;
  readonly #closer = new AbortController();

  /** Creates a transport with resolved settings. */
  constructor(options: TransportOptions) {
    this.#options = options;
    this.#basePath = options.baseUrl.pathname.replace(/\/+$/, "");
  }

  /** Whether {@link Transport.close} was called. */
  get closed(): boolean {
    return this.#closer.signal.aborted;
  }

  /** A signal that aborts when the transport is closed. */
  get closedSignal(): AbortSignal {
    return this.#closer.signal;
  }

  /** Aborts every request in flight with a {@link ClosedError}. */
  close(): void {
    this.#closer.abort(new ClosedError("The client was closed"));
  }

  /** Builds the absolute URL of a path relative to the base URL. */
  url(path: string): URL {
    return new URL(`${this.#options.baseUrl.origin}${this.#basePath}${path}`);
  }

  /**
   * Sends a request, retrying network errors, timeouts, 429 and 5xx up to
   * the configured count. Returns the final response whatever its status;
   * throws when no response arrived on the last attempt.
   */
  async request(spec: RequestSpec): Promise<TransportResponse> {
    const { policy } = this.#options;
    let mayHaveApplied = false;
    for (let attempt = 0;; attempt++) {
      this.#throwIfStopped(spec);
      let response: AttemptResult;
      try {
        response = await this.#attempt(spec);
      } catch (error) {
        if (
          !(error instanceof ConnectionError || error instanceof TimeoutError)
        ) {
          throw error;
        }
        if (attempt >= (spec.retries ?? policy.retries)) throw error;
        mayHaveApplied = true;
        await this.#wait(spec, attempt, backoffDelay(attempt, policy), {
          error,
        });
        continue;
      }
      const delay = this.#retryDelay(response, attempt, spec);
      if (delay === undefined) {
        return {
          ...response,
          attempts: attempt + 1,
          earlierAttemptMayHaveApplied: mayHaveApplied,
        };
      }
      if (response.status >= 500) mayHaveApplied = true;
      await this.#wait(spec, attempt, delay, { status: response.status });
    }
  }

  /**
   * Opens a streaming request, such as a subscription: no deadline and no
   * retries, same-origin redirects followed. The body is left unread.
   */
  async open(spec: RequestSpec): Promise<Response> {
    this.#throwIfStopped(spec);
    const signal = this.#signal(spec.signal);
    try {
      return await this.#fetchFollowing(spec, signal, false);
    } catch (error) {
      throw this.#translate(error, spec, undefined);
    }
  }

  #retryDelay(
    response: AttemptResult,
    attempt: number,
    spec: RequestSpec,
  ): number | undefined {
    const { policy } = this.#options;
    const retries = spec.retries ?? policy.retries;
    if (attempt >= retries || !isRetryableStatus(response.status)) {
      return undefined;
    }
    if (response.status === 429) {
      // A window longer than the maximum delay is reported to the caller,
      // who can decide to wait, instead of blocking the call for it. The
      // jitter never decides that.
      const wait = rateLimitWait(response.headers, policy.now());
      if (wait > policy.maxDelay) return undefined;
      return rateLimitDelay(response.headers, policy);
    }
    // Stash's own 503s carry a JSON message (such as "git integration not
    // enabled") and do not change on retry; the concurrency limit's 503
    // and proxies' 503s do.
    if (
      response.status === 503 &&
      (response.headers.get("content-type") ?? "").includes("json")
    ) {
      return undefined;
    }
    return backoffDelay(attempt, policy);
  }

  async #wait(
    spec: RequestSpec,
    attempt: number,
    delay: number,
    cause: { status?: number; error?: StashError },
  ): Promise<void> {
    this.#options.onRetry?.({
      method: spec.method,
      path: spec.path,
      retry: attempt + 1,
      delay,
      ...cause,
    });
    const signal = this.#signal(spec.signal);
    try {
      await this.#options.policy.sleep(delay, signal);
    } catch (error) {
      throw this.#translate(error, spec, undefined);
    }
  }

  #throwIfStopped(spec: RequestSpec): void {
    if (spec.signal?.aborted) throw spec.signal.reason;
    if (this.#closer.signal.aborted) throw this.#closer.signal.reason;
  }

  #signal(
    caller: AbortSignal | undefined,
    deadline?: AbortSignal,
  ): AbortSignal {
    const signals = [this.#closer.signal];
    if (caller !== undefined) signals.push(caller);
    if (deadline !== undefined) signals.push(deadline);
    return AbortSignal.any(signals);
  }

  async #attempt(spec: RequestSpec): Promise<AttemptResult> {
    // A cleared setTimeout instead of AbortSignal.timeout(), because the
    // latter's timer cannot be cancelled and would outlive the request.
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(DEADLINE),
      this.#options.timeout,
    );
    const signal = this.#signal(spec.signal, deadline.signal);
    try {
      const response = await this.#fetchFollowing(spec, signal, true);
      const body = await readBody(response, signal);
      return { status: response.status, headers: response.headers, body };
    } catch (error) {
      throw this.#translate(error, spec, deadline.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  async #fetchFollowing(
    spec: RequestSpec,
    signal: AbortSignal,
    sendBody: boolean,
  ): Promise<Response> {
    const { baseUrl, maxRedirects } = this.#options;
    const headers = new Headers(this.#options.headers);
    for (const [name, value] of Object.entries(spec.headers ?? {})) {
      headers.set(name, value);
    }
    let url = this.url(spec.path);
    for (let redirects = 0;; redirects++) {
      const init: RequestInit = {
        method: spec.method,
        headers,
        signal,
        redirect: "manual",
      };
      if (sendBody && spec.body !== undefined) init.body = spec.body;
      const response = checkResponse(
        await this.#options.fetch(url, init),
        spec,
      );
      const location = response.headers.get("location");
      const isRedirect = response.status >= 300 && response.status < 400 &&
        response.status !== 304;
      if (
        response.type === "opaqueredirect" || (isRedirect && location === null)
      ) {
        await response.body?.cancel();
        throw new ResponseError(
          `${describeTarget(spec)} was redirected without a readable ` +
            `Location (status ${response.status}); check the base URL`,
          redirectContext(spec, response.status),
        );
      }
      if (!isRedirect || location === null) return response;
      await response.body?.cancel();
      const next = new URL(location, url);
      if (next.origin !== baseUrl.origin) {
        throw new ResponseError(
          `${describeTarget(spec)} was redirected to another origin ` +
            `(${next.origin}); the client follows only same-origin redirects ` +
            "so that the token stays with the configured server. Use the " +
            "redirect target as the base URL if it is trusted",
          redirectContext(spec, response.status),
        );
      }
      if (redirects >= maxRedirects) {
        throw new ResponseError(
          `${describeTarget(spec)} was redirected more than ` +
            `${maxRedirects} times (last to ${next.pathname}); check the ` +
            "base URL and the server's proxy settings",
          redirectContext(spec, response.status),
        );
      }
      url = next;
    }
  }

  #translate(
    error: unknown,
    spec: RequestSpec,
    deadline: AbortSignal | undefined,
  ): unknown {
    if (spec.signal?.aborted) return spec.signal.reason;
    if (this.#closer.signal.aborted) return this.#closer.signal.reason;
    const context = {
      method: spec.method,
      path: spec.path,
      ...(spec.key === undefined ? {} : { key: spec.key }),
    };
    const target = describeTarget(spec);
    if (deadline?.aborted) {
      const timeout = this.#options.timeout;
      return new TimeoutError(
        `${target} timed out after ${timeout} ms (the timeout option ` +
          "covers connecting, the headers and the body of one attempt)",
        { ...context, timeout, cause: error },
      );
    }
    if (error instanceof StashError) return error;
    const reason = error instanceof Error ? error.message : String(error);
    const hint = spec.method === "PUT" && (spec.body?.length ?? 0) > 65536
      ? "; the server may have closed the connection because the value " +
        "exceeds its body size limit"
      : "";
    return new ConnectionError(
      `${target} failed: could not reach the server at ` +
        `${this.#options.baseUrl.origin} (${reason})${hint}`,
      { ...context, cause: error },
    );
  }
}

interface AttemptResult {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

/**
 * Checks that the `fetch` option resolved to a Response. Anything else is
 * a programming error, reported without retries instead of as a network
 * failure.
 */
function checkResponse(value: unknown, spec: RequestSpec): Response {
  const candidate = value as Partial<Response> | null;
  if (
    typeof candidate === "object" && candidate !== null &&
    typeof candidate.status === "number" &&
    typeof candidate.headers?.get === "function"
  ) {
    return value as Response;
  }
  const got = value === null ? "null" : typeof value;
  throw new StashError(
    `${describeTarget(spec)} failed: the fetch option resolved to ${got} ` +
      "instead of a Response; check the fetch function passed to the client",
    {
      method: spec.method,
      path: spec.path,
      ...(spec.key === undefined ? {} : { key: spec.key }),
    },
  );
}

/** Names a request in messages: the key when there is one, else the path. */
function describeTarget(spec: RequestSpec): string {
  return spec.key === undefined
    ? `${spec.method} ${spec.path}`
    : `${spec.method} of key ${quoteKey(spec.key)}`;
}

function redirectContext(spec: RequestSpec, status: number) {
  return {
    method: spec.method,
    path: spec.path,
    status,
    ...(spec.key === undefined ? {} : { key: spec.key }),
  };
}

/**
 * Reads a whole body, rejecting with the signal's reason as soon as it
 * aborts, even when the body stream itself ignores the signal.
 */
export async function readBody(
  response: Response,
  signal: AbortSignal,
): Promise<Uint8Array> {
  if (response.body === null) return new Uint8Array(0);
  const reader = response.body.getReader();
  let onAbort = (): void => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
  });
  if (signal.aborted) onAbort();
  signal.addEventListener("abort", onAbort, { once: true });
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), aborted]);
      if (done) break;
      chunks.push(value);
      length += value.length;
    }
  } catch (error) {
    reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const body = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}
