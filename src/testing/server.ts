/**
 * The in-process Stash server: one request handler over a store, served
 * through an injected `fetch` or `Deno.serve` on the loopback interface.
 *
 * @module
 */

import { Acl, extractToken, type Operation, type TokenConfig } from "./acl.ts";
import {
  abortableBody,
  badRequest,
  cleanPath,
  type Exchange,
  JSON_TYPE,
  jsonError,
  listenerError,
  notFound,
  raceAbort,
  readBody,
  redirect,
  reply,
  requestId,
  safeDecode,
  TEXT_TYPE,
  unauthorized,
  withBody,
} from "./_http.ts";

import {
  delay,
  dripBody,
  errorBody,
  type FaultAction,
  Faults,
  respondWith,
  stallBody,
} from "./faults.ts";
import {
  clientAddress,
  RateLimiter,
  type RateLimitOptions,
} from "./rate_limit.ts";
import { parseSubscriptionPath, SseHub } from "./sse_hub.ts";
import {
  acceptFormat,
  contentTypeOf,
  decodeStrictBase64,
  encodeBase64,
  encodeGoJson,
  formatNanos,
  formatSeconds,
  HistoryLog,
  isSecretKey,
  isZkValue,
  NanoClock,
  normalizeKey,
  Store,
  type StoredEntry,
} from "./store.ts";

/** Options of {@linkcode StashServer}. */
export interface StashServerOptions {
  /**
   * Server behaviour to imitate: the newest Stash server, or v0.13.0
   * (PascalCase list fields, 200 on create, no subscribe route, no
   * `filter=`, no `X-Auth-Token`, no secrets rule, history ACL on
   * `history/<key>`, history operation `set`).
   *
   * @default {"newest"}
   */
  version?: "newest" | "v0.13.0";
  /**
   * Tokens of the auth file. Auth is on when this is given, even when empty.
   *
   * @default {undefined (auth off)}
   */
  tokens?: TokenConfig[];
  /**
   * Whether git history is on. When off, the history endpoint returns 503.
   *
   * @default {false}
   */
  history?: boolean;
  /**
   * Maximum request body in bytes, inclusive; larger bodies get 413.
   *
   * @default {1_048_576}
   */
  bodyLimit?: number;
  /**
   * Token bucket per client address, or `false` for no limiting (responses
   * then report a constant `Ratelimit-Limit: 100`, `Ratelimit-Remaining: 99`).
   *
   * @default {false}
   */
  rateLimit?: RateLimitOptions | false;
  /**
   * Maximum requests in flight. Beyond it the server returns an empty 503. Each open SSE stream
   * occupies a slot until it ends.
   *
   * @default {1000}
   */
  maxConcurrent?: number;
  /**
   * Whether the server has a secrets key. Without one, reads and writes of
   * secret paths get 400 `secrets not configured` (newest only).
   *
   * @default {true}
   */
  secretsKey?: boolean;
  /**
   * Send SSE status and headers as soon as a subscription is accepted,
   * instead of with its first event as the real server does.
   *
   * @default {false}
   */
  flushOnSubscribe?: boolean;
  /**
   * Clock in milliseconds since the epoch, for timestamps and rate limiting.
   *
   * @default {Date.now}
   */
  now?: () => number;
  /**
   * Path prefix the server is mounted under, like `/stash`; `GET /stash`
   * then redirects 301 to `/stash/`.
   *
   * @default {""}
   */
  basePath?: string;
  /**
   * Unread events one SSE subscriber may have queued. When the buffer is
   * full and `blockingPublish` is off, the subscriber is dropped: its stream
   * ends cleanly.
   *
   * @default {100}
   */
  sseBufferSize?: number;
  /**
   * Make PUT and DELETE wait while a subscriber's buffer is full, as the
   * real server's writes stall behind a subscriber that stops reading.
   *
   * @default {false}
   */
  blockingPublish?: boolean;
  /**
   * `App-Version` header value.
   *
   * @default {"v0.13.0" for v0.13.0, "master-testing" for newest}
   */
  appVersion?: string;
}

/** One request as the server received it. */
export interface RecordedRequest {
  /** HTTP method. */
  method: string;
  /** Path and query as received, still percent-encoded. */
  url: string;
  /** Request headers with lowercase names. */
  headers: Record<string, string>;
  /**
   * Body bytes the server read; empty when it had none or rejected it by
   * its declared `Content-Length` before reading.
   */
  body: Uint8Array;
}

/** A loopback listener started by {@linkcode StashServer.listen}. */
export interface StashListener {
  /** Base URL, like `http://127.0.0.1:PORT`. */
  url: string;
  /** The port the system assigned. */
  port: number;
  /** Ends the streams served through this listener and stops it. */
  close(): Promise<void>;
}

/** Source of one request: the client address and its abort signals. */
interface Origin {
  remoteAddr: string;
  /** Aborts when the client goes away. */
  clientSignal: AbortSignal;
  /** Aborts when the listener that received the request closes. */
  closeSignal: AbortSignal | undefined;
}

type Route =
  | { kind: "list" }
  | { kind: "key"; key: string; aclKey: string }
  | { kind: "history"; key: string; aclKey: string }
  | { kind: "subscribe"; path: string };

const KEY_METHODS = ["GET", "HEAD", "PUT", "DELETE"];
const ALLOW = "DELETE, GET, HEAD, PUT";
const DEFAULT_BODY_LIMIT = 1_048_576;
const DEFAULT_MAX_CONCURRENT = 1000;
const DEFAULT_SSE_BUFFER = 100;
const RATE_LIMITED = "You have reached maximum request limit.";
const encoder = new TextEncoder();

/**
 * An in-process Stash server for tests. It imitates the newest Stash server
 * (or v0.13.0, see {@linkcode StashServerOptions.version}) and is reachable
 * through {@linkcode StashServer.fetch} without sockets, or over HTTP with
 * {@linkcode StashServer.listen}.
 *
 * @example Store and read a value through the injected fetch
 * ```ts
 * import { StashServer } from "@stash/client/testing";
 * import assert from "node:assert/strict";
 *
 * const server = new StashServer();
 * const put = await server.fetch("http://stash.test/kv/app%2Fconfig", {
 *   method: "PUT",
 *   headers: { "X-Stash-Format": "json" },
 *   body: '{"debug":true}',
 * });
 * assert.equal(put.status, 201);
 * const get = await server.fetch("http://stash.test/kv/app%2Fconfig");
 * assert.equal(get.headers.get("content-type"), "application/json");
 * assert.equal(await get.text(), '{"debug":true}');
 * await server.close();
 * ```
 */
export class StashServer {
  /**
   * A `fetch` bound to this server: any origin, no sockets, redirects
   * returned as they are. `init.signal` aborts the exchange: the promise
   * rejects with the signal's reason, and a body being read errors with it.
   */
  readonly fetch: (
    input: Request | URL | string,
    init?: RequestInit,
  ) => Promise<Response>;

  #newest: boolean;
  #clock: NanoClock;
  #store: Store;
  #history: HistoryLog | undefined;
  #acl: Acl;
  #rateLimiter: RateLimiter;
  #hub: SseHub;
  #faults = new Faults();
  #requests: RecordedRequest[] = [];
  #listeners = new Set<StashListener>();
  #closing = new AbortController();
  #inFlight = 0;
  #bodyLimit: number;
  #maxConcurrent: number;
  #secretsKey: boolean;
  #basePath: string;
  #appVersion: string;

  /**
   * Creates a server with an empty store.
   *
   * @throws {RangeError} When `rateLimit` has a rate of 0 or less, or a burst
   * below 1.
   */
  constructor(options?: StashServerOptions) {
    options ??= {};
    this.#newest = (options.version ?? "newest") === "newest";
    const now = options.now ?? Date.now;
    this.#clock = new NanoClock(now);
    this.#store = new Store(this.#clock);
    this.#history = options.history ? new HistoryLog() : undefined;
    this.#acl = new Acl(options.tokens, {
      writeImpliesRead: this.#newest,
      secretsRule: this.#newest,
    });
    this.#rateLimiter = new RateLimiter(options.rateLimit ?? false, now);
    this.#hub = new SseHub({
      flushOnSubscribe: options.flushOnSubscribe ?? false,
      bufferSize: options.sseBufferSize ?? DEFAULT_SSE_BUFFER,
      blockingPublish: options.blockingPublish ?? false,
    });
    this.#bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
    this.#maxConcurrent = options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
    this.#secretsKey = options.secretsKey ?? true;
    this.#basePath = (options.basePath ?? "").replace(/\/+$/, "");
    this.#appVersion = options.appVersion ??
      (this.#newest ? "master-testing" : "v0.13.0");
    this.fetch = (input, init) => this.#fetch(input, init);
  }

  /** Handles one request, as `Deno.serve` would pass it. */
  handle(request: Request): Promise<Response> {
    return this.#serve(request, {
      remoteAddr: "127.0.0.1",
      clientSignal: request.signal,
      closeSignal: undefined,
    });
  }

  /** Every request received so far, oldest first, faulted ones included. */
  get requests(): ReadonlyArray<RecordedRequest> {
    return this.#requests;
  }

  /** Forgets the recorded requests. */
  clearRequests(): void {
    this.#requests = [];
  }

  /** The fault rules applied to incoming requests. */
  get faults(): Faults {
    return this.#faults;
  }

  /** The number of open SSE streams. */
  get subscriberCount(): number {
    return this.#hub.count;
  }

  /** Returns the bytes stored under exactly `key` (no normalisation). */
  getRaw(key: string): Uint8Array | undefined {
    return this.#store.get(key)?.value.slice();
  }

  /**
   * Stores `value` under exactly `key`, with `format` as given (default
   * `text`; an unknown format reads back as `application/octet-stream`).
   * Records no history and publishes no event.
   */
  put(key: string, value: Uint8Array | string, format?: string): void {
    format ??= "text";
    const bytes = typeof value === "string"
      ? encoder.encode(value)
      : value.slice();
    this.#store.set(key, bytes, format);
  }

  /** Returns every stored key in code-unit order. */
  keys(): string[] {
    return this.#store.keys();
  }

  /** Removes every key and all history. */
  clear(): void {
    this.#store.clear();
    this.#history?.clear();
  }

  /**
   * Replaces the tokens, as a hot reload of the auth file does; `undefined`
   * turns auth off. Open SSE streams stay open and their events are checked
   * against the new tokens.
   */
  setTokens(tokens: TokenConfig[] | undefined): void {
    this.#acl.setTokens(tokens);
  }

  /**
   * Writes `chunk` as is to every open SSE stream, with no matching or
   * permission check; the first write sends deferred headers.
   */
  publishRaw(chunk: string | Uint8Array): void {
    this.#hub.publishRaw(chunk);
  }

  /** Ends every open SSE stream cleanly, as a server restart does. */
  dropStreams(): void {
    this.#hub.dropAll();
  }

  /**
   * Starts `Deno.serve` on 127.0.0.1 with a system-assigned port.
   *
   * @throws {Error} Outside Deno, where `Deno.serve` is missing: pass
   * {@linkcode StashServer.fetch} to the client instead.
   */
  listen(): Promise<StashListener> {
    const deno = (globalThis as { Deno?: typeof Deno }).Deno;
    if (typeof deno?.serve !== "function") {
      return Promise.reject(
        new Error(
          "StashServer.listen() requires Deno.serve, which this runtime " +
            "lacks: pass server.fetch to the client as its fetch instead",
        ),
      );
    }
    return Promise.resolve(this.#listenWith(deno));
  }

  /**
   * Ends every SSE stream, stops every listener and cancels pending fault
   * timers and stalled bodies. The in-process handler stays usable.
   */
  async close(): Promise<void> {
    this.#closing.abort(new TypeError("server closed"));
    this.#closing = new AbortController();
    this.#hub.dropAll();
    await Promise.all([...this.#listeners].map((listener) => listener.close()));
  }

  #listenWith(deno: typeof Deno): StashListener {
    const stop = new AbortController();
    const server = deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
      onError: listenerError,
    }, (request, info) => {
      // Deno's request.signal also aborts after every successful response,
      // so the end of the exchange is taken from `completed` instead.
      const client = new AbortController();
      const disconnected = () =>
        client.abort(new TypeError("client disconnected"));
      info.completed.then(disconnected, disconnected);
      return this.#serve(request, {
        remoteAddr: info.remoteAddr.hostname,
        clientSignal: client.signal,
        closeSignal: stop.signal,
      });
    });
    const port = server.addr.port;
    const listener: StashListener = {
      url: `http://127.0.0.1:${port}`,
      port,
      close: async () => {
        if (!this.#listeners.delete(listener)) return;
        stop.abort(new TypeError("listener closed"));
        await server.shutdown();
      },
    };
    this.#listeners.add(listener);
    return listener;
  }

  async #fetch(
    input: Request | URL | string,
    init?: RequestInit,
  ): Promise<Response> {
    const request = new Request(input, init);
    const signal = init?.signal ??
      (input instanceof Request ? input.signal : null);
    if (signal?.aborted) throw signal.reason;
    const pending = this.handle(request);
    if (!signal) return pending;
    const response = await raceAbort(pending, signal);
    return abortableBody(response, signal);
  }

  async #serve(request: Request, origin: Origin): Promise<Response> {
    // Taken before any await, so a close() racing this request still ends it.
    const serverSignal = this.#closing.signal;
    const url = new URL(request.url);
    const record: RecordedRequest = {
      method: request.method,
      url: url.pathname + url.search,
      headers: Object.fromEntries(request.headers),
      body: new Uint8Array(),
    };
    this.#requests.push(record);
    const fault = this.#faults.take(request, url.pathname);
    const { bytes, state } = await readBody(request, this.#bodyLimit);
    record.body = bytes;
    const exchange = this.#exchange(request, url, bytes, state, {
      ...origin,
      serverSignal,
    });
    if (fault === undefined) return this.#throttled(exchange);
    return this.#applyFault(fault, exchange);
  }

  #exchange(
    request: Request,
    url: URL,
    body: Uint8Array,
    bodyState: Exchange["bodyState"],
    origin: Origin & { serverSignal: AbortSignal },
  ): Exchange {
    const signals = [origin.clientSignal, origin.serverSignal];
    if (origin.closeSignal) signals.push(origin.closeSignal);
    return {
      request,
      url,
      body,
      bodyState,
      signal: AbortSignal.any(signals),
      remoteAddr: origin.remoteAddr,
      headers: new Headers(),
      streamFault: undefined,
      keepSlot: false,
      release: () => {},
    };
  }

  async #applyFault(fault: FaultAction, exchange: Exchange): Promise<Response> {
    switch (fault.type) {
      case "respond":
        return respondWith(fault);
      case "reject":
        throw new TypeError(fault.message ?? "connection refused");
      case "handler":
        return await fault.handler(withBody(exchange.request, exchange.body));
      case "delay":
        await delay(fault.ms, exchange.signal);
        return this.#throttled(exchange);
      case "stall":
        return stallBody(
          await this.#throttled(exchange),
          fault,
          exchange.signal,
        );
      case "drip":
        return dripBody(
          await this.#throttled(exchange),
          fault,
          exchange.signal,
        );
      case "errorBody":
        return errorBody(await this.#throttled(exchange), fault);
      default:
        exchange.streamFault = fault;
        return this.#throttled(exchange);
    }
  }

  // NOTE: the throttle's place before the rate limiter is a guess, which is
  // why its 503 carries no headers at all.
  async #throttled(exchange: Exchange): Promise<Response> {
    if (this.#inFlight >= this.#maxConcurrent) {
      return new Response(null, { status: 503 });
    }
    this.#inFlight++;
    let released = false;
    exchange.release = () => {
      if (released) return;
      released = true;
      this.#inFlight--;
    };
    try {
      return await this.#middleware(exchange);
    } finally {
      if (!exchange.keepSlot) exchange.release();
    }
  }

  // The order of the real server's middleware: rate limit, request id, body
  // limit, app headers, ping, path cleaning, then the router.
  #middleware(exchange: Exchange): Promise<Response> | Response {
    const { request, headers } = exchange;
    const address = clientAddress(request.headers, exchange.remoteAddr);
    const decision = this.#rateLimiter.take(address);
    for (const [name, value] of Object.entries(decision.headers)) {
      headers.set(name, value);
    }
    if (!decision.allowed) return reply(exchange, 429, RATE_LIMITED, TEXT_TYPE);
    headers.set(
      "X-Request-Id",
      request.headers.get("x-request-id") || requestId(),
    );
    if (exchange.bodyState === "tooLarge") {
      headers.set("Connection", "close");
      return reply(exchange, 413, "", undefined);
    }
    if (exchange.bodyState === "failed") {
      return new Response(null, { status: 503, headers });
    }
    headers.set("App-Name", "stash");
    headers.set("App-Version", this.#appVersion);
    headers.set("Author", "umputun");
    if (this.#isPing(exchange)) {
      return reply(exchange, 200, "pong", "text/plain");
    }
    return this.#route(exchange);
  }

  #isPing({ request, url }: Exchange): boolean {
    const methods = this.#newest ? ["GET", "HEAD"] : ["GET"];
    if (!methods.includes(request.method)) return false;
    const decoded = safeDecode(url.pathname) ?? url.pathname;
    return decoded.toLowerCase().endsWith("/ping");
  }

  #route(exchange: Exchange): Promise<Response> | Response {
    const { url } = exchange;
    const cleaned = cleanPath(url.pathname);
    if (cleaned !== url.pathname) {
      return redirect(exchange, 307, cleaned + url.search);
    }
    let path = url.pathname;
    if (this.#basePath !== "") {
      if (path === this.#basePath) {
        return redirect(exchange, 301, `${path}/${url.search}`);
      }
      if (!path.startsWith(`${this.#basePath}/`)) return notFound(exchange);
      path = path.slice(this.#basePath.length);
    }
    if (path === "/kv") {
      return redirect(exchange, 307, `${this.#basePath}/kv/${url.search}`);
    }
    if (!path.startsWith("/kv/")) return notFound(exchange);
    const route = this.#parseRoute(exchange, path.slice("/kv/".length));
    if (route === undefined) return badRequest(exchange);
    return this.#authorize(exchange, route) ?? this.#dispatch(exchange, route);
  }

  #parseRoute(exchange: Exchange, rest: string): Route | undefined {
    const method = exchange.request.method;
    const readLike = method === "GET" || method === "HEAD";
    const slash = rest.indexOf("/");
    const first = slash < 0 ? undefined : safeDecode(rest.slice(0, slash));
    const tail = rest.slice(slash + 1);
    if (rest === "" && readLike) return { kind: "list" };
    if (readLike && first === "history") {
      const decoded = safeDecode(tail);
      if (decoded === undefined) return undefined;
      const key = normalizeKey(decoded);
      return {
        kind: "history",
        key,
        aclKey: this.#newest ? key : `history/${key}`,
      };
    }
    if (readLike && first === "subscribe" && this.#newest) {
      const decoded = safeDecode(tail);
      return decoded === undefined
        ? undefined
        : { kind: "subscribe", path: decoded };
    }
    const decoded = safeDecode(rest);
    if (decoded === undefined) return undefined;
    const key = normalizeKey(decoded);
    return { kind: "key", key, aclKey: key };
  }

  /** Returns the 401 or 403 response when the request is not authorized. */
  #authorize(exchange: Exchange, route: Route): Response | undefined {
    if (!this.#acl.enabled) return undefined;
    const token = this.#token(exchange);
    const method = exchange.request.method;
    const needsKey = (route.kind === "key" && KEY_METHODS.includes(method)) ||
      route.kind === "history";
    if (!needsKey || route.aclKey === "") {
      return this.#acl.hasPrincipal(token) ? undefined : unauthorized(exchange);
    }
    const operation: Operation = method === "PUT" || method === "DELETE"
      ? "write"
      : "read";
    if (this.#acl.allows(token, route.aclKey, operation)) return undefined;
    if (!this.#acl.isValidToken(token)) return unauthorized(exchange);
    return reply(exchange, 403, "Forbidden\n", TEXT_TYPE, { nosniff: true });
  }

  #token(exchange: Exchange): string | undefined {
    return extractToken(exchange.request.headers, this.#newest);
  }

  #dispatch(exchange: Exchange, route: Route): Promise<Response> | Response {
    const method = exchange.request.method;
    switch (route.kind) {
      case "list":
        return this.#list(exchange);
      case "history":
        return this.#historyOf(exchange, route.key);
      case "subscribe":
        return this.#subscribe(exchange, route.path);
      case "key":
        break;
    }
    switch (method) {
      case "GET":
      case "HEAD":
        return this.#getKey(exchange, route.key);
      case "PUT":
        return this.#putKey(exchange, route.key);
      case "DELETE":
        return this.#deleteKey(exchange, route.key);
      default:
        exchange.headers.set("Allow", ALLOW);
        return reply(exchange, 405, "Method Not Allowed\n", TEXT_TYPE, {
          nosniff: true,
        });
    }
  }

  /** Returns the 400 for an empty key or an unconfigured secret path. */
  #checkKey(exchange: Exchange, key: string): Response | undefined {
    if (key === "") return jsonError(exchange, 400, "key is required");
    if (this.#newest && !this.#secretsKey && isSecretKey(key)) {
      return jsonError(exchange, 400, "secrets not configured");
    }
    return undefined;
  }

  #getKey(exchange: Exchange, key: string): Response {
    const invalid = this.#checkKey(exchange, key);
    if (invalid) return invalid;
    const entry = this.#store.get(key);
    if (entry === undefined) return jsonError(exchange, 404, "key not found");
    if (this.#newest) {
      exchange.headers.set("Content-Security-Policy", "sandbox");
      exchange.headers.set("X-Content-Type-Options", "nosniff");
    }
    return reply(exchange, 200, entry.value, contentTypeOf(entry.format));
  }

  async #putKey(exchange: Exchange, key: string): Promise<Response> {
    const invalid = this.#checkKey(exchange, key);
    if (invalid) return invalid;
    const value = exchange.body;
    if (
      this.#newest && isSecretKey(key) && isZkValue(value) && !isValidZk(value)
    ) {
      return jsonError(exchange, 400, "invalid ZK payload");
    }
    const { request, url } = exchange;
    const format = acceptFormat(
      request.headers.get("x-stash-format") || url.searchParams.get("format"),
    );
    const created = this.#store.set(key, value, format);
    const action = created ? "create" : "update";
    const operation = this.#newest ? action : "set";
    this.#commit(exchange, key, operation, format, value);
    if (this.#newest) await this.#publish(key, action);
    const status = this.#newest && created ? 201 : 200;
    return reply(exchange, status, "", undefined);
  }

  async #deleteKey(exchange: Exchange, key: string): Promise<Response> {
    if (key === "") return jsonError(exchange, 400, "key is required");
    const removed = this.#store.delete(key);
    if (removed === undefined) return jsonError(exchange, 404, "key not found");
    this.#commit(exchange, key, "delete", removed.format, new Uint8Array());
    if (this.#newest) await this.#publish(key, "delete");
    return new Response(null, { status: 204, headers: exchange.headers });
  }

  #publish(key: string, action: "create" | "update" | "delete"): Promise<void> {
    const timestamp = formatSeconds(this.#clock.nowMs());
    return this.#hub.publish({ key, action, timestamp });
  }

  // Git refuses paths with `..`, so such keys get no commit, and the write
  // still succeeds as on the real server.
  #commit(
    exchange: Exchange,
    key: string,
    operation: string,
    format: string,
    value: Uint8Array,
  ): void {
    if (this.#history === undefined || key.includes("..")) return;
    const token = this.#token(exchange);
    const author = this.#acl.isValidToken(token)
      ? `token:${token?.slice(0, 8)}`
      : "stash";
    this.#history.append(key, {
      timestamp: formatSeconds(this.#clock.nowMs()),
      author,
      operation,
      format,
      value: operation === "delete" ? "" : encodeBase64(value),
    });
  }

  #historyOf(exchange: Exchange, key: string): Response {
    if (this.#history === undefined) {
      return jsonError(exchange, 503, "git integration not enabled");
    }
    if (key === "") return jsonError(exchange, 400, "key is required");
    if (key.includes("..")) {
      return jsonError(exchange, 500, "failed to get history");
    }
    return reply(
      exchange,
      200,
      encodeGoJson(this.#history.entries(key)),
      JSON_TYPE,
    );
  }

  #list(exchange: Exchange): Response {
    const filter = this.#newest
      ? parseFilter(exchange.url.searchParams.get("filter"))
      : "all";
    if (filter === undefined) {
      return jsonError(exchange, 400, "invalid filter parameter");
    }
    let entries = this.#store.list();
    if (this.#acl.enabled) {
      const token = this.#token(exchange);
      entries = entries.filter(([key]) => this.#acl.allows(token, key, "read"));
      if (entries.length === 0) return jsonError(exchange, 401, "unauthorized");
    }
    // Each filtering step builds a fresh slice in Go, which encodes as
    // `null` when nothing is left; the unfiltered empty store encodes as `[]`.
    let filtered = false;
    const prefix = exchange.url.searchParams.get("prefix") ?? "";
    if (prefix !== "") {
      entries = entries.filter(([key]) => key.startsWith(prefix));
      filtered = true;
    }
    if (filter !== "all") {
      entries = entries.filter(([key]) =>
        isSecretKey(key) === (filter === "secrets")
      );
      filtered = true;
    }
    const body = entries.length === 0 && filtered
      ? null
      : entries.map(([key, entry]) => this.#listEntry(key, entry));
    return reply(exchange, 200, encodeGoJson(body), JSON_TYPE);
  }

  #listEntry(key: string, entry: StoredEntry): Record<string, unknown> {
    const createdAt = formatNanos(entry.createdNs);
    const updatedAt = formatNanos(entry.updatedNs);
    const size = entry.value.length;
    if (!this.#newest) {
      return {
        Key: key,
        Size: size,
        Format: entry.format,
        CreatedAt: createdAt,
        UpdatedAt: updatedAt,
      };
    }
    return {
      key,
      size,
      format: entry.format,
      secret: isSecretKey(key),
      zk_encrypted: isZkValue(entry.value),
      created_at: createdAt,
      updated_at: updatedAt,
    };
  }

  #subscribe(exchange: Exchange, path: string): Promise<Response> | Response {
    const target = parseSubscriptionPath(path);
    if (target === undefined) {
      // NOTE: the trailing newline assumes Go's http.Error writes SSE refusals.
      return reply(exchange, 400, "key path required\n", TEXT_TYPE, {
        nosniff: true,
      });
    }
    const token = this.#token(exchange);
    if (
      target.kind === "exact" && !this.#acl.allows(token, target.key, "read")
    ) {
      return reply(exchange, 403, "access denied\n", TEXT_TYPE, {
        nosniff: true,
      });
    }
    exchange.keepSlot = true;
    return this.#hub.subscribe({
      target,
      canRead: (key) => this.#acl.allows(token, key, "read"),
      signal: exchange.signal,
      headers: Object.fromEntries(exchange.headers),
      onEnd: exchange.release,
      fault: exchange.streamFault,
    });
  }
}

/**
 * Creates an in-process Stash server; see {@linkcode StashServer}.
 *
 * @example Serve on the loopback interface
 * ```ts
 * import { createStashServer } from "@stash/client/testing";
 * import assert from "node:assert/strict";
 *
 * const server = createStashServer({ version: "v0.13.0" });
 * server.put("app/config", "v1");
 * const listener = await server.listen();
 * const response = await fetch(`${listener.url}/kv/app%2Fconfig`);
 * assert.equal(await response.text(), "v1");
 * await server.close();
 * ```
 */
export function createStashServer(options?: StashServerOptions): StashServer {
  return new StashServer(options);
}

/** Parses `filter=`; returns undefined for an invalid value. */
function parseFilter(
  value: string | null,
): "all" | "secrets" | "keys" | undefined {
  switch ((value ?? "").toLowerCase()) {
    case "":
    case "all":
      return "all";
    case "secrets":
    case "secretsonly":
    case "true":
      return "secrets";
    case "keys":
    case "keysonly":
    case "false":
      return "keys";
    default:
      return undefined;
  }
}

/** Checks a `$ZK$` value: strict base64 that decodes to at least 44 bytes. */
function isValidZk(value: Uint8Array): boolean {
  const text = new TextDecoder().decode(value.subarray(4));
  const payload = decodeStrictBase64(text);
  return payload !== undefined && payload.length >= 44;
}

export { cleanPath } from "./_http.ts";
