/**
 * The Stash client.
 *
 * @module
 */

import {
  ClosedError,
  DecryptionError,
  errorFromResponse,
  NotFoundError,
  PayloadTooLargeError,
  quoteKey,
  ResponseError,
  StashError,
} from "./errors.ts";
import { type Format, validateFormat } from "./format.ts";
import {
  type HistoryEntry,
  type KeyInfo,
  parseHistory,
  parseKeyList,
} from "./key_info.ts";
import {
  historyPath,
  keyPath,
  normalizeKey,
  readPath,
  validateKey,
  validatePrefix,
} from "./keys.ts";
import {
  type CallOptions,
  checkCallOptions,
  type ClientOptions,
  type ListFilter,
  type ListOptions,
  type ResolvedOptions,
  resolveOptions,
  type SetOptions,
  type SetResult,
  type WatchKeyOptions,
} from "./options.ts";
import { Transport, type TransportResponse } from "./transport.ts";
import type { SubscribeOptions, Subscription } from "./sse/subscription.ts";
import type { KeyRead, Watch } from "./sse/watch.ts";
import { Subscriptions } from "./_subscriptions.ts";
import { decodeBase64 } from "./zk/base64.ts";
import { isEncrypted } from "./zk/cipher.ts";
import { ZkCodec } from "./zk/codec.ts";

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const ENCODER = new TextEncoder();
const LIST_FILTERS: ReadonlySet<string> = new Set(["all", "secrets", "keys"]);

/**
 * A client for one Stash server.
 *
 * Every method takes an optional last argument with an `AbortSignal`. Calls
 * are retried on network errors, timeouts, 429 and 5xx as configured.
 * After {@link Client.close} every call rejects with {@link ClosedError}.
 *
 * @example Store and read a value
 * ```ts
 * import { Client } from "@stash/client";
 * import { createStashServer } from "@stash/client/testing";
 * import assert from "node:assert/strict";
 *
 * const server = createStashServer();
 * await using client = new Client("http://stash.test", { fetch: server.fetch });
 * await client.set("app/config", '{"debug":true}', "json");
 * assert.equal(await client.get("app/config"), '{"debug":true}');
 * ```
 */
export class Client
  implements AsyncIterable<KeyInfo>, AsyncDisposable, Disposable {
  readonly #options: ResolvedOptions;
  readonly #transport: Transport;
  readonly #zk: ZkCodec | undefined;
  readonly #requireEncryption: boolean;
  readonly #subscriptions: Subscriptions;
  /** The token and passphrase, redacted from every server message. */
  readonly #secrets: readonly string[];
  #seenCreated = false;

  /**
   * Creates a client for the server at `baseUrl`, which may include a path
   * (`https://host/stash`). Throws a `TypeError` or `RangeError` for an
   * invalid URL or option, naming it.
   */
  constructor(baseUrl: string | URL, options?: ClientOptions) {
    if (options === undefined) options = {};
    this.#options = resolveOptions(baseUrl, options);
    const resolved = this.#options;
    this.#transport = new Transport({
      baseUrl: resolved.baseUrl,
      fetch: resolved.fetch,
      headers: resolved.headers,
      timeout: resolved.timeout,
      maxRedirects: resolved.maxRedirects,
      policy: {
        retries: resolved.retries,
        baseDelay: resolved.retryDelay,
        maxDelay: resolved.maxRetryDelay,
        random: resolved.random,
        now: resolved.now,
        sleep: resolved.sleep,
      },
      ...(options.onRetry === undefined ? {} : { onRetry: options.onRetry }),
    });
    this.#zk = options.zkKey === undefined
      ? undefined
      : new ZkCodec(options.zkKey, options.zk ?? {});
    this.#requireEncryption = options.requireEncryption ?? false;
    const secrets = [options.token, options.zkKey].filter(
      (secret): secret is string => secret !== undefined && secret !== "",
    );
    this.#secrets = secrets;
    this.#subscriptions = new Subscriptions({
      transport: this.#transport,
      keyEncoding: resolved.keyEncoding,
      defaults: options.subscribe ?? {},
      secrets,
      ...(options.reconnect === undefined
        ? {}
        : { reconnect: options.reconnect }),
      ...(options.sleep === undefined ? {} : { sleep: options.sleep }),
      ...(options.random === undefined ? {} : { random: options.random }),
    });
  }

  /** The base URL, without a trailing slash. */
  get baseUrl(): string {
    const url = this.#options.baseUrl;
    return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
  }

  /** Whether {@link Client.close} was called. */
  get closed(): boolean {
    return this.#transport.closed;
  }

  /**
   * Reads a value as text.
   *
   * @throws {NotFoundError} when the key does not exist.
   * @throws {StashError} when the value is not valid UTF-8; read it with
   * {@link Client.getBytes} instead.
   */
  async get(key: string, options?: CallOptions): Promise<string> {
    const bytes = await this.getBytes(key, options);
    return decodeText(bytes, key);
  }

  /**
   * Reads a value as bytes, exactly as stored (decrypted when `zkKey` is
   * set).
   *
   * @throws {NotFoundError} when the key does not exist.
   */
  async getBytes(key: string, options?: CallOptions): Promise<Uint8Array> {
    validateKey(key);
    const signal = checkCallOptions(options)?.signal;
    const response = await this.#send({
      method: "GET",
      path: readPath(key, this.#options.keyEncoding),
      key,
      signal,
    });
    this.#expectSuccess(response, "GET", key);
    return await this.#decode(response.body, key);
  }

  /**
   * Reads a value as text, or returns `fallback` when the key does not
   * exist. Every other failure still rejects.
   */
  async getOrDefault<T>(
    key: string,
    fallback: T,
    options?: CallOptions,
  ): Promise<string | T> {
    try {
      return await this.get(key, options);
    } catch (error) {
      if (error instanceof NotFoundError) return fallback;
      throw error;
    }
  }

  /**
   * Reads a value and parses it as JSON. The type parameter is not checked
   * at run time.
   *
   * @throws {StashError} when the value is not valid JSON.
   */
  async getJson<T = unknown>(key: string, options?: CallOptions): Promise<T> {
    const text = await this.get(key, options);
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new StashError(
        `Value of key ${quoteKey(key)} is not valid JSON (${
          (error as Error).message
        }); read it with get() instead`,
        { key, cause: error },
      );
    }
  }

  /**
   * Stores a value under `key` with a format (default `text`), creating or
   * replacing it. With `zkKey` set the value is encrypted first.
   *
   * The third argument is a format or {@link SetOptions}. Resolves to the
   * key as the server stores it and whether the key was created.
   *
   * @throws {TypeError} for an invalid key, value or format, before sending.
   * @throws {PayloadTooLargeError} when the body exceeds `maxBodySize`.
   */
  async set(
    key: string,
    value: string | Uint8Array,
    formatOrOptions?: Format | SetOptions,
  ): Promise<SetResult> {
    validateKey(key);
    const options: SetOptions = typeof formatOrOptions === "string"
      ? { format: formatOrOptions }
      : checkCallOptions(formatOrOptions) ?? {};
    const format = validateFormat(options.format ?? "text");
    let body = toBytes(value, key);
    if (this.#zk !== undefined) body = await this.#encrypt(body);
    this.#checkSize(body, key);
    const response = await this.#send({
      method: "PUT",
      path: keyPath(key, this.#options.keyEncoding),
      key,
      body,
      headers: { "x-stash-format": format },
      signal: options.signal,
    });
    if (response.status === 413) {
      const error = errorFromResponse(
        response,
        { method: "PUT", key },
        this.#options.now(),
        this.#secrets,
      );
      throw new PayloadTooLargeError(error.message, {
        key,
        method: "PUT",
        status: 413,
        serverMessage: error.serverMessage,
        size: body.length,
        ...(error.requestId === undefined
          ? {}
          : { requestId: error.requestId }),
      });
    }
    this.#expectSuccess(response, "PUT", key);
    return { key: normalizeKey(key), created: this.#created(response) };
  }

  /**
   * Stores `value` as JSON with format `json`.
   *
   * @throws {TypeError} when the value cannot be serialised as JSON.
   */
  async setJson(
    key: string,
    value: unknown,
    options?: CallOptions,
  ): Promise<SetResult> {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (error) {
      throw new TypeError(
        `Invalid value for key ${quoteKey(key)}: it cannot be serialised ` +
          `as JSON (${(error as Error).message})`,
        { cause: error },
      );
    }
    if (text === undefined) {
      throw new TypeError(
        `Invalid value for key ${quoteKey(key)}: JSON has no form for ` +
          `${typeof value}`,
      );
    }
    return await this.set(key, text, {
      ...checkCallOptions(options),
      format: "json",
    });
  }

  /**
   * Deletes a key.
   *
   * A retried delete whose earlier attempt may have reached the server
   * succeeds on 404, because that attempt probably deleted the key.
   *
   * @throws {NotFoundError} when the key does not exist.
   */
  async delete(key: string, options?: CallOptions): Promise<void> {
    validateKey(key);
    const signal = checkCallOptions(options)?.signal;
    const response = await this.#send({
      method: "DELETE",
      path: keyPath(key, this.#options.keyEncoding),
      key,
      signal,
    });
    if (response.status === 404 && response.earlierAttemptMayHaveApplied) {
      return;
    }
    this.#expectSuccess(response, "DELETE", key);
  }

  /**
   * Lists key metadata, newest update first. `prefix` is a plain string
   * prefix: `app` also matches `application/x`.
   */
  async list(prefix?: string, options?: ListOptions): Promise<KeyInfo[]> {
    const query = new URLSearchParams();
    if (prefix !== undefined && validatePrefix(prefix) !== "") {
      query.set("prefix", prefix);
    }
    const checked = checkCallOptions(options);
    const filter = checked?.filter;
    if (filter !== undefined) {
      if (!LIST_FILTERS.has(filter as string)) {
        throw new TypeError(
          `Invalid filter ${
            JSON.stringify(filter)
          }: expected "all", "secrets" or "keys"`,
        );
      }
      query.set("filter", filter satisfies ListFilter);
    }
    const search = query.size === 0 ? "" : `?${query}`;
    const path = `/kv/${search}`;
    const response = await this.#send({
      method: "GET",
      path,
      signal: checked?.signal,
    });
    // With auth on, a caller who can read no key at all gets a JSON 401
    // even with a valid token. A rejected token gets the auth layer's
    // plain-text 401.
    if (response.status === 401 && isJson(response)) return [];
    this.#expectSuccess(response, "GET", undefined, path);
    return parseKeyList(response.body);
  }

  /**
   * Returns the metadata of one key. Other keys that share its prefix are
   * ignored.
   *
   * @throws {NotFoundError} when the key does not exist.
   */
  async info(key: string, options?: CallOptions): Promise<KeyInfo> {
    validateKey(key);
    const stored = normalizeKey(key);
    const entries = await this.list(stored, options);
    const entry = entries.find((candidate) => candidate.key === stored);
    if (entry === undefined) {
      throw new NotFoundError(`Key ${quoteKey(key)} not found`, {
        key,
        status: 404,
        method: "GET",
        path: "/kv/",
      });
    }
    return entry;
  }

  /**
   * Reports whether a key exists, with a HEAD request that transfers no
   * value.
   */
  async has(key: string, options?: CallOptions): Promise<boolean> {
    validateKey(key);
    const signal = checkCallOptions(options)?.signal;
    const response = await this.#send({
      method: "HEAD",
      path: readPath(key, this.#options.keyEncoding),
      key,
      signal,
    });
    if (response.status === 404) return false;
    this.#expectSuccess(response, "HEAD", key);
    return true;
  }

  /**
   * Checks that the server is up: resolves to true when it responds to its
   * health check with `pong`, and to false on any other response or a
   * network failure. It is not retried. It still rejects when the signal aborts or
   * the client is closed.
   */
  async ping(options?: CallOptions): Promise<boolean> {
    const signal = checkCallOptions(options)?.signal;
    this.#throwIfClosed();
    try {
      const response = await this.#transport.request({
        method: "GET",
        path: "/ping",
        signal,
        retries: 0,
      });
      return response.status === 200 &&
        new TextDecoder().decode(response.body).trim() === "pong";
    } catch (error) {
      if (signal?.aborted || this.closed) throw error;
      if (error instanceof StashError) return false;
      throw error;
    }
  }

  /**
   * Returns the git history of a key, newest first (at most 50 entries on
   * current servers). Zero-knowledge values are decrypted. Needs a server
   * with git enabled.
   *
   * @throws {ResponseError} with status 503 when the server runs without
   * git.
   */
  async history(key: string, options?: CallOptions): Promise<HistoryEntry[]> {
    validateKey(key);
    const signal = checkCallOptions(options)?.signal;
    const response = await this.#send({
      method: "GET",
      path: historyPath(key, this.#options.keyEncoding),
      key,
      signal,
    });
    if (response.status === 503 && isJson(response)) {
      const error = errorFromResponse(
        response,
        { key },
        this.#options.now(),
        this.#secrets,
      );
      throw new ResponseError(
        `History of key ${quoteKey(key)} is not available: the server runs ` +
          `without git (503: ${error.serverMessage})`,
        {
          key,
          method: "GET",
          path: historyPath(key, this.#options.keyEncoding),
          status: 503,
          serverMessage: error.serverMessage,
          ...(error.requestId === undefined
            ? {}
            : { requestId: error.requestId }),
        },
      );
    }
    this.#expectSuccess(response, "GET", key);
    const entries = parseHistory(response.body);
    const result: HistoryEntry[] = [];
    for (const entry of entries) {
      let value: Uint8Array;
      try {
        value = decodeBase64(entry.value);
      } catch (error) {
        throw new StashError(
          `Invalid history entry ${entry.hash} of key ${quoteKey(key)}: ` +
            "its value is not valid base64",
          { key, cause: error },
        );
      }
      if (entry.operation !== "delete" || value.length > 0) {
        value = await this.#decode(value, key);
      }
      result.push({ ...entry, value });
    }
    return result;
  }

  /**
   * Subscribes to changes of one key. Events arrive as
   * `{ key, action, timestamp }`; read the key for its new value, or use
   * {@link Client.watch}. The subscription reconnects after network errors,
   * a stream that ends, 429 and 5xx, and its `for await` loop rejects on
   * 400, 401, 403 and 404. Stash does not replay events missed while
   * reconnecting: watch `onStateChange` to resync.
   *
   * @throws {TypeError} for an invalid key, before connecting.
   */
  subscribe(key: string, options?: SubscribeOptions): Subscription {
    this.#throwIfClosed();
    return this.#subscriptions.forKey(key, options);
  }

  /**
   * Subscribes to changes of every key below `prefix`, segment-aligned:
   * prefix `app` receives `app/x` but not `application`.
   *
   * @throws {TypeError} for an invalid or empty prefix, before connecting.
   */
  subscribePrefix(prefix: string, options?: SubscribeOptions): Subscription {
    this.#throwIfClosed();
    return this.#subscriptions.forPrefix(prefix, options);
  }

  /** Subscribes to changes of every key the token can read. */
  subscribeAll(options?: SubscribeOptions): Subscription {
    this.#throwIfClosed();
    return this.#subscriptions.forAll(options);
  }

  /**
   * Watches the value of a key: yields the current value first (or
   * `exists: false`), then the value after each change, decrypted when
   * `zkKey` is set. Bursts of changes may be coalesced into one update, but
   * the last value is always yielded: the key is read again after every
   * reconnect.
   *
   * @throws {TypeError} for an invalid key, before connecting.
   */
  watch(key: string, options?: WatchKeyOptions): Watch {
    this.#throwIfClosed();
    return this.#subscriptions.watch(
      key,
      options,
      (readSignal) => this.#readForWatch(key, readSignal),
    );
  }

  /**
   * Iterates over the metadata of every key, as {@link Client.list} with no
   * prefix returns it.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<KeyInfo> {
    for (const info of await this.list()) yield info;
  }

  /**
   * Closes the client: aborts calls in flight, ends subscriptions and
   * wipes the passphrase and every derived key. Later calls reject with
   * {@link ClosedError}. Calling it again does nothing.
   */
  close(): Promise<void> {
    this.#transport.close();
    this.#zk?.close();
    return Promise.resolve();
  }

  /** Calls {@link Client.close}, for `using`. */
  [Symbol.dispose](): void {
    void this.close();
  }

  /** Calls {@link Client.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Describes the client without its token or passphrase. */
  toString(): string {
    const token = this.#options.token === undefined ? "none" : "set";
    const zk = this.#zk === undefined ? "off" : "on";
    return `Client(${this.baseUrl}, token: ${token}, zk: ${zk})`;
  }

  /** Returns the public settings only, for `JSON.stringify`. */
  toJSON(): { baseUrl: string; closed: boolean } {
    return { baseUrl: this.baseUrl, closed: this.closed };
  }

  /** Returns the redacted description for `Deno.inspect`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /** Returns the redacted description for Node's `util.inspect`. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  async #readForWatch(key: string, signal: AbortSignal): Promise<KeyRead> {
    try {
      return { exists: true, value: await this.get(key, { signal }) };
    } catch (error) {
      if (error instanceof NotFoundError) return { exists: false };
      throw error;
    }
  }

  #throwIfClosed(): void {
    if (this.closed) {
      throw new ClosedError("The client is closed; create a new Client");
    }
  }

  async #send(
    spec: Parameters<Transport["request"]>[0],
  ): Promise<TransportResponse> {
    this.#throwIfClosed();
    return await this.#transport.request(spec);
  }

  /** Throws the typed error of a non-2xx response; `path` names keyless calls. */
  #expectSuccess(
    response: TransportResponse,
    method: string,
    key: string | undefined,
    path?: string,
  ): void {
    if (response.status >= 200 && response.status < 300) return;
    throw errorFromResponse(
      response,
      {
        method,
        ...(key === undefined ? {} : { key }),
        ...(path === undefined ? {} : { path }),
      },
      this.#options.now(),
      this.#secrets,
    );
  }

  #created(response: TransportResponse): boolean | undefined {
    if (response.status === 201) {
      this.#seenCreated = true;
      return true;
    }
    if (!this.#seenCreated || response.earlierAttemptMayHaveApplied) {
      return undefined;
    }
    return false;
  }

  #checkSize(body: Uint8Array, key: string): void {
    const limit = this.#options.maxBodySize;
    if (body.length <= limit) return;
    const description = this.#zk === undefined ? "value" : "encrypted value";
    throw new PayloadTooLargeError(
      `The ${description} for key ${
        quoteKey(key)
      } is ${body.length} bytes, over ` +
        `the body size limit of ${limit} bytes (maxBodySize); it was not ` +
        "sent. Store a smaller value, or raise both the server's limit and " +
        "maxBodySize",
      { key, status: 413, method: "PUT", size: body.length, limit },
    );
  }

  async #encrypt(
    body: Uint8Array<ArrayBuffer>,
  ): Promise<Uint8Array<ArrayBuffer>> {
    this.#throwIfClosed();
    const envelope = await (this.#zk as ZkCodec).encrypt(body);
    return new Uint8Array(envelope);
  }

  async #decode(value: Uint8Array, key: string): Promise<Uint8Array> {
    if (this.#zk === undefined) return value;
    if (!isEncrypted(value)) {
      if (!this.#requireEncryption) return value;
      throw new DecryptionError(
        `Value of key ${quoteKey(key)} is not encrypted, but the client ` +
          "requires encryption (requireEncryption); the server may have " +
          "replaced the ciphertext",
        { key, reason: "not encrypted" },
      );
    }
    this.#throwIfClosed();
    return await this.#zk.decrypt(value, { key });
  }
}

function isJson(response: TransportResponse): boolean {
  return (response.headers.get("content-type") ?? "").includes("json");
}

function decodeText(bytes: Uint8Array, key: string): string {
  try {
    return UTF8.decode(bytes);
  } catch (error) {
    throw new StashError(
      `Value of key ${quoteKey(key)} is not valid UTF-8 text; read it with ` +
        "getBytes() instead",
      { key, cause: error },
    );
  }
}

/** Copies a value into a fresh buffer that retries can re-send unchanged. */
function toBytes(value: unknown, key: string): Uint8Array<ArrayBuffer> {
  if (typeof value === "string") {
    if (!value.isWellFormed()) {
      throw new TypeError(
        `Invalid value for key ${quoteKey(key)}: the string contains a lone ` +
          "UTF-16 surrogate, which has no UTF-8 form; pass bytes instead",
      );
    }
    return ENCODER.encode(value);
  }
  if (value instanceof Uint8Array) return new Uint8Array(value);
  throw new TypeError(
    `Invalid value for key ${quoteKey(key)}: expected a string or ` +
      `Uint8Array, got ${value === null ? "null" : typeof value}`,
  );
}
