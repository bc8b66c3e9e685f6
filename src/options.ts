/**
 * Client options, per-call options, their defaults and their validation.
 *
 * @module
 */

import type { Format } from "./format.ts";
import type { KeyEncoding } from "./keys.ts";
import { sleep as defaultSleep, type SleepFunction } from "./retry.ts";
import type { FetchFunction, RetryEvent } from "./transport.ts";
import type { WatchOptions } from "./sse/watch.ts";
import type { ReconnectOptions, SubscribeOptions } from "./sse/subscription.ts";
import type { ZkOptions } from "./zk/options.ts";

/** Options of {@link Client}. */
export interface ClientOptions {
  /**
   * API token, sent as `Authorization: Bearer <token>`. It never appears in
   * errors, `toString`, `JSON.stringify` or `Deno.inspect` output.
   * @default undefined (no credentials)
   */
  token?: string | undefined;
  /**
   * Per-attempt timeout in milliseconds. It covers connecting, the response
   * headers and reading the body. Each retry gets a fresh timeout.
   * Subscriptions have none, because the server sends no headers until the
   * first event.
   * @default 30000
   */
  timeout?: number;
  /**
   * Retries after the first attempt, for network errors, timeouts, 429, 500,
   * 502, 503 and 504. Other 4xx are never retried. A 429 waits for the
   * rate-limit window (`Retry-After`, else `RateLimit-Reset`, else 1 s).
   * @default 3
   */
  retries?: number;
  /**
   * Upper bound in milliseconds of the first backoff delay. It doubles on
   * every retry, and each delay is drawn uniformly from zero up to that
   * bound (full jitter).
   * @default 100
   */
  retryDelay?: number;
  /**
   * Maximum delay in milliseconds of one backoff or rate-limit wait. A 429
   * whose window is longer raises {@link RateLimitError} at once.
   * @default 30000
   */
  maxRetryDelay?: number;
  /**
   * Passphrase for zero-knowledge encryption, at least 16 UTF-8 bytes. When
   * set, values are encrypted before they leave the client and `$ZK$`
   * values are decrypted on read. It never appears in any output.
   * @default undefined (no encryption)
   */
  zkKey?: string | undefined;
  /**
   * Settings of the zero-knowledge codec: key cache size, write-key
   * rotation, derivation concurrency and Worker use. Requires `zkKey`.
   * @default {}
   */
  zk?: ZkOptions;
  /**
   * Reject values that are not `$ZK$` envelopes with
   * {@link DecryptionError}, so that a server that replaces a ciphertext
   * with plaintext is caught. Requires `zkKey`.
   * @default false
   */
  requireEncryption?: boolean;
  /**
   * The fetch implementation, such as `createStashServer().fetch` in tests.
   * @default globalThis.fetch
   */
  fetch?: FetchFunction;
  /**
   * Extra headers sent with every request, such as `X-Request-Id`. The
   * `token` option replaces any `Authorization` header given here.
   * @default {}
   */
  headers?: ConstructorParameters<typeof Headers>[0];
  /**
   * Key encoding in request paths. `"segment"` sends the whole key as one
   * path segment with slashes as `%2F`, which addresses every key exactly.
   * `"path"` sends literal slashes for proxies that reject `%2F`; it cannot
   * address keys with empty, `.` or `..` segments.
   * @default "segment"
   */
  keyEncoding?: KeyEncoding;
  /**
   * Largest request body in bytes that the client sends. A larger value
   * raises {@link PayloadTooLargeError} without a request. Stash's default
   * limit is 1 MiB.
   * @default 1048576
   */
  maxBodySize?: number;
  /**
   * Maximum same-origin redirects followed in one attempt. Redirects to
   * another origin are never followed.
   * @default 5
   */
  maxRedirects?: number;
  /**
   * Called before each retry with the reason and the delay; for logging.
   * @default undefined
   */
  onRetry?: (event: RetryEvent) => void;
  /**
   * Default options of every subscription, merged under the options given
   * to `subscribe()`.
   * @default {}
   */
  subscribe?: SubscribeOptions;
  /**
   * Reconnection delays of subscriptions: exponential backoff with full
   * jitter from `initialDelay` up to `maxDelay`, reset after a connection
   * that stayed up for `resetAfter`.
   * @default { initialDelay: 1000, maxDelay: 30000, resetAfter: 60000 }
   */
  reconnect?: ReconnectOptions;
  /**
   * Waits between retries and subscription reconnects; inject it to test
   * without real delays. Subscriptions with an `idleTimeout` also use it to
   * time the idle check, so there it must really wait (or advance an
   * injected clock) rather than resolve at once.
   * @default a setTimeout-based sleep that honours the signal
   */
  sleep?: SleepFunction;
  /**
   * Returns a number in [0, 1) for backoff jitter.
   * @default Math.random
   */
  random?: () => number;
  /**
   * Returns the current time in ms since the epoch, for `Retry-After` dates.
   * @default Date.now
   */
  now?: () => number;
}

/** Options of every call. */
export interface CallOptions {
  /** Aborts the call; it then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Options of {@link Client.set}. */
export interface SetOptions extends CallOptions {
  /**
   * The value's format.
   * @default "text"
   */
  format?: Format;
}

/** Key selection of {@link Client.list}. */
export type ListFilter = "all" | "secrets" | "keys";

/** Options of {@link Client.list}. */
export interface ListOptions extends CallOptions {
  /**
   * `"secrets"` lists only keys under a `secrets` path segment, `"keys"`
   * only the others. Servers before the secrets vault (v0.13.0) ignore it.
   * @default "all"
   */
  filter?: ListFilter;
}

/** Options of {@link Client.watch}: the watch's own and its subscription's. */
export interface WatchKeyOptions extends WatchOptions {
  /** Options of the subscription under the watch; its hooks run too. */
  subscription?: SubscribeOptions;
}

/** Result of {@link Client.set}. */
export interface SetResult {
  /** The key as the server stores it: trimmed, spaces replaced by `_`. */
  key: string;
  /**
   * True when the server created the key (201). False when it overwrote
   * one, which the client can tell only after the server has responded with 201
   * at least once (v0.13.0 responds with 200 to both). Undefined otherwise, or
   * when an earlier attempt of this call may already have created the key.
   */
  created: boolean | undefined;
}

/** Client settings with every default applied. */
export interface ResolvedOptions {
  baseUrl: URL;
  token: string | undefined;
  timeout: number;
  retries: number;
  retryDelay: number;
  maxRetryDelay: number;
  keyEncoding: KeyEncoding;
  maxBodySize: number;
  maxRedirects: number;
  fetch: FetchFunction;
  headers: Headers;
  sleep: SleepFunction;
  random: () => number;
  now: () => number;
}

const MIN_PASSPHRASE_BYTES = 16;

/** Largest delay `setTimeout` honours; larger ones fire at once. */
const MAX_TIMER_DELAY = 2_147_483_647;

function checkNumber(
  value: unknown,
  name: string,
  fallback: number,
  { min, max = Number.MAX_SAFE_INTEGER, integer }: {
    min: number;
    max?: number;
    integer: boolean;
  },
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== "number" || !Number.isFinite(value) || value < min ||
    value > max || (integer && !Number.isInteger(value))
  ) {
    const kind = integer ? "an integer" : "a finite number";
    throw new RangeError(
      `Invalid ${name} option ${String(value)}: expected ${kind} from ` +
        `${min} to ${max}`,
    );
  }
  return value;
}

function checkFunction<T>(value: unknown, name: string, fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== "function") {
    throw new TypeError(
      `Invalid ${name} option: expected a function, got ${typeof value}`,
    );
  }
  return value as T;
}

/**
 * Parses and checks the base URL: http or https, no credentials, query or
 * fragment; trailing slashes of the path are dropped.
 */
export function parseBaseUrl(value: unknown): URL {
  if (!(typeof value === "string" || value instanceof URL)) {
    throw new TypeError(
      `Invalid base URL: expected a string or URL, got ${
        value === null ? "null" : typeof value
      }`,
    );
  }
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new TypeError(
      `Invalid base URL ${
        JSON.stringify(String(value))
      }: expected an absolute http or https URL`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new TypeError(
      "Invalid base URL: it contains credentials; pass the token with the " +
        "token option instead",
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(
      `Invalid base URL ${
        JSON.stringify(url.href)
      }: the scheme must be http or https`,
    );
  }
  if (url.search !== "" || url.hash !== "") {
    throw new TypeError(
      `Invalid base URL ${
        JSON.stringify(url.href)
      }: it must not have a query or fragment`,
    );
  }
  url.pathname = url.pathname.replace(/\/+$/, "");
  return url;
}

// Visible ASCII without spaces: the RFC 6750 bearer token characters and a
// few more, so that no header can be injected or altered.
const TOKEN_REGEXP = /^[\x21-\x7E]+$/;

function checkToken(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") {
    throw new TypeError(
      `Invalid token option: expected a string, got ${typeof value}`,
    );
  }
  if (!TOKEN_REGEXP.test(value)) {
    throw new TypeError(
      "Invalid token option: it must be non-empty printable ASCII without " +
        "spaces or control characters (the value is not shown)",
    );
  }
  return value;
}

/**
 * Checks a zero-knowledge passphrase: a string of at least 16 UTF-8 bytes.
 * The error never contains the passphrase.
 */
export function checkPassphrase(value: unknown): string {
  if (typeof value !== "string") {
    throw new TypeError(
      `Invalid zkKey option: expected a string, got ${typeof value}`,
    );
  }
  if (!value.isWellFormed()) {
    throw new TypeError(
      "Invalid zkKey option: the passphrase contains a lone UTF-16 " +
        "surrogate, which has no UTF-8 form (the value is not shown)",
    );
  }
  const bytes = new TextEncoder().encode(value).length;
  if (bytes < MIN_PASSPHRASE_BYTES) {
    throw new TypeError(
      `Invalid zkKey option: the passphrase must be at least ` +
        `${MIN_PASSPHRASE_BYTES} bytes of UTF-8 (bytes, not characters), ` +
        `got ${bytes} bytes`,
    );
  }
  return value;
}

/**
 * Builds the headers option, naming the option when a name or value is
 * invalid (such as a value with CR or LF, which could inject a header).
 */
function checkHeaders(
  value: ConstructorParameters<typeof Headers>[0],
): Headers {
  try {
    return new Headers(value);
  } catch (error) {
    throw new TypeError(
      `Invalid headers option: ${(error as Error).message} (names must be ` +
        "HTTP tokens, values must not contain CR, LF or NUL)",
      { cause: error },
    );
  }
}

/** Checks `zkKey`, `zk` and `requireEncryption`, which go together. */
function checkEncryptionOptions(options: ClientOptions): void {
  if (options.zkKey !== undefined) checkPassphrase(options.zkKey);
  if (options.zk !== undefined && options.zkKey === undefined) {
    throw new TypeError("Invalid zk option: it needs the zkKey option");
  }
  if (options.requireEncryption === undefined) return;
  if (typeof options.requireEncryption !== "boolean") {
    throw new TypeError("Invalid requireEncryption option: expected a boolean");
  }
  if (options.requireEncryption && options.zkKey === undefined) {
    throw new TypeError(
      "Invalid requireEncryption option: it needs the zkKey option",
    );
  }
}

function checkKeyEncoding(value: unknown): KeyEncoding {
  const keyEncoding = value ?? "segment";
  if (keyEncoding !== "segment" && keyEncoding !== "path") {
    throw new TypeError(
      `Invalid keyEncoding option ${
        JSON.stringify(keyEncoding)
      }: expected "segment" or "path"`,
    );
  }
  return keyEncoding;
}

/** Validates every option and applies the defaults. */
export function resolveOptions(
  baseUrl: unknown,
  options: ClientOptions,
): ResolvedOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Invalid client options: expected an object, got ${
        options === null ? "null" : typeof options
      }`,
    );
  }
  const token = checkToken(options.token);
  const headers = checkHeaders(options.headers);
  if (token !== undefined) headers.set("authorization", `Bearer ${token}`);
  const keyEncoding = checkKeyEncoding(options.keyEncoding);
  checkEncryptionOptions(options);
  checkFunction(options.onRetry, "onRetry", undefined);

  const integer = { min: 0, integer: true };
  const duration = (min: number) => ({
    min,
    max: MAX_TIMER_DELAY,
    integer: false,
  });
  return {
    baseUrl: parseBaseUrl(baseUrl),
    token,
    timeout: checkNumber(options.timeout, "timeout", 30_000, duration(1)),
    retries: checkNumber(options.retries, "retries", 3, integer),
    retryDelay: checkNumber(options.retryDelay, "retryDelay", 100, duration(0)),
    maxRetryDelay: checkNumber(
      options.maxRetryDelay,
      "maxRetryDelay",
      30_000,
      duration(0),
    ),
    keyEncoding,
    maxBodySize: checkNumber(options.maxBodySize, "maxBodySize", 1_048_576, {
      min: 1,
      integer: true,
    }),
    maxRedirects: checkNumber(options.maxRedirects, "maxRedirects", 5, integer),
    fetch: checkFunction(
      options.fetch,
      "fetch",
      ((input, init) => globalThis.fetch(input, init)) as FetchFunction,
    ),
    headers,
    sleep: checkFunction(options.sleep, "sleep", defaultSleep),
    random: checkFunction(options.random, "random", Math.random),
    now: checkFunction(options.now, "now", Date.now),
  };
}

/** Checks that a per-call options argument is an object with a valid signal. */
export function checkCallOptions<T extends CallOptions>(
  options: T | undefined,
): T | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Invalid call options: expected an object, got ${
        options === null ? "null" : typeof options
      }`,
    );
  }
  if (
    options.signal !== undefined && !(options.signal instanceof AbortSignal)
  ) {
    throw new TypeError("Invalid signal option: expected an AbortSignal");
  }
  return options;
}
