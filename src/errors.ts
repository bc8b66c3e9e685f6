/**
 * Errors raised by the client. Every error extends {@link StashError}, and
 * every error built from an HTTP response extends {@link ResponseError}.
 *
 * No message or field ever contains the client's token or passphrase.
 *
 * @module
 */

/** Context shared by errors about one request. */
export interface RequestContext {
  /** HTTP method of the request, such as `GET`. */
  method?: string;
  /** Request path relative to the base URL, with the key percent-encoded. */
  path?: string;
  /** The key the request was about, as the caller passed it. */
  key?: string;
}

/** Options of {@link StashError} and its subclasses. */
export interface StashErrorOptions extends ErrorOptions, RequestContext {}

/** Base class of every error the client raises for a failed operation. */
export class StashError extends Error {
  /** HTTP method of the failed request, when one was involved. */
  readonly method: string | undefined;
  /** Request path of the failed request, when one was involved. */
  readonly path: string | undefined;
  /** The key the operation was about, when there was one. */
  readonly key: string | undefined;

  /** Creates an error with a message and optional request context. */
  constructor(message: string, options: StashErrorOptions = {}) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = "StashError";
    this.method = options.method;
    this.path = options.path;
    this.key = options.key;
  }
}

/** Options of {@link ResponseError} and its subclasses. */
export interface ResponseErrorOptions extends StashErrorOptions {
  /** HTTP status code of the response. */
  status: number;
  /** The server's error message, from its JSON `error` field or text body. */
  serverMessage?: string;
  /** The response's `X-Request-Id` header, for matching server logs. */
  requestId?: string;
}

/** An HTTP response with a status the operation does not accept. */
export class ResponseError extends StashError {
  /** HTTP status code of the response. */
  readonly status: number;
  /** The server's error message, or an empty string when it sent none. */
  readonly serverMessage: string;
  /** The response's `X-Request-Id`, when the server sent one. */
  readonly requestId: string | undefined;

  /** Creates an error for a response with the given status. */
  constructor(message: string, options: ResponseErrorOptions) {
    super(message, options);
    this.name = "ResponseError";
    this.status = options.status;
    this.serverMessage = options.serverMessage ?? "";
    this.requestId = options.requestId;
  }
}

/** The key does not exist (404). */
export class NotFoundError extends ResponseError {
  /** Creates an error for a missing key. */
  constructor(message: string, options: ResponseErrorOptions) {
    super(message, options);
    this.name = "NotFoundError";
  }
}

/** The token is missing, malformed or unknown to the server (401). */
export class UnauthorizedError extends ResponseError {
  /** Creates an error for a rejected token. */
  constructor(message: string, options: ResponseErrorOptions) {
    super(message, options);
    this.name = "UnauthorizedError";
  }
}

/** The token is valid but its permissions do not cover the key (403). */
export class ForbiddenError extends ResponseError {
  /** Creates an error for a denied key. */
  constructor(message: string, options: ResponseErrorOptions) {
    super(message, options);
    this.name = "ForbiddenError";
  }
}

/** Options of {@link RateLimitError}. */
export interface RateLimitErrorOptions extends ResponseErrorOptions {
  /** `RateLimit-Limit`: requests allowed per window. */
  limit?: number;
  /** `RateLimit-Remaining`: requests left in the current window. */
  remaining?: number;
  /** `RateLimit-Reset`: seconds until the window resets. */
  reset?: number;
  /** Milliseconds the server asked the client to wait, from `Retry-After`. */
  retryAfter?: number;
}

/** The server's rate limit rejected the request (429) after every retry. */
export class RateLimitError extends ResponseError {
  /** `RateLimit-Limit`: requests allowed per window, when sent. */
  readonly limit: number | undefined;
  /** `RateLimit-Remaining`: requests left in the window, when sent. */
  readonly remaining: number | undefined;
  /** `RateLimit-Reset`: seconds until the window resets, when sent. */
  readonly reset: number | undefined;
  /** Milliseconds to wait from `Retry-After`, when sent. */
  readonly retryAfter: number | undefined;

  /** Creates an error for a rate-limited request. */
  constructor(message: string, options: RateLimitErrorOptions) {
    super(message, options);
    this.name = "RateLimitError";
    this.limit = options.limit;
    this.remaining = options.remaining;
    this.reset = options.reset;
    this.retryAfter = options.retryAfter;
  }
}

/** Options of {@link PayloadTooLargeError}. */
export interface PayloadTooLargeErrorOptions extends ResponseErrorOptions {
  /** Size in bytes of the request body. */
  size?: number;
  /** The body limit in bytes that the client checked against. */
  limit?: number;
}

/**
 * The value exceeds the server's body limit (413). The client raises it
 * before sending when the body is larger than its `maxBodySize` option, and
 * then {@link ResponseError.requestId} is undefined.
 */
export class PayloadTooLargeError extends ResponseError {
  /** Size in bytes of the request body, when known. */
  readonly size: number | undefined;
  /** The body limit in bytes, when known. */
  readonly limit: number | undefined;

  /** Creates an error for a body over the server's limit. */
  constructor(message: string, options: PayloadTooLargeErrorOptions) {
    super(message, options);
    this.name = "PayloadTooLargeError";
    this.size = options.size;
    this.limit = options.limit;
  }
}

/** The request failed before a response arrived: refused, reset or DNS. */
export class ConnectionError extends StashError {
  /** Creates an error for a failed connection; pass the failure as `cause`. */
  constructor(message: string, options: StashErrorOptions = {}) {
    super(message, options);
    this.name = "ConnectionError";
  }
}

/** Options of {@link TimeoutError}. */
export interface TimeoutErrorOptions extends StashErrorOptions {
  /** The per-attempt timeout in milliseconds that expired. */
  timeout?: number;
}

/** An attempt did not finish, body included, within the client's timeout. */
export class TimeoutError extends StashError {
  /** The per-attempt timeout in milliseconds that expired. */
  readonly timeout: number | undefined;

  /** Creates an error for an expired timeout. */
  constructor(message: string, options: TimeoutErrorOptions = {}) {
    super(message, options);
    this.name = "TimeoutError";
    this.timeout = options.timeout;
  }
}

/** Options of {@link DecryptionError}. */
export interface DecryptionErrorOptions extends StashErrorOptions {
  /** Short reason, such as `authentication failed` or `invalid base64`. */
  reason: string;
}

/**
 * A zero-knowledge value could not be decrypted (wrong passphrase, tampered,
 * truncated or malformed), or a plaintext value was read from a client that
 * requires encryption.
 */
export class DecryptionError extends StashError {
  /** Short reason for the failure; it never contains the passphrase. */
  readonly reason: string;

  /** Creates an error for a value that failed to decrypt. */
  constructor(message: string, options: DecryptionErrorOptions) {
    super(message, options);
    this.name = "DecryptionError";
    this.reason = options.reason;
  }
}

/** The client, or the subscription, was closed before or during the call. */
export class ClosedError extends StashError {
  /** Creates an error for a call on a closed client or subscription. */
  constructor(message: string, options: StashErrorOptions = {}) {
    super(message, options);
    this.name = "ClosedError";
  }
}

/** The server does not offer the requested feature, such as subscriptions. */
export class UnsupportedError extends StashError {
  /** Creates an error for a feature the server lacks. */
  constructor(message: string, options: StashErrorOptions = {}) {
    super(message, options);
    this.name = "UnsupportedError";
  }
}

/** The parts of an HTTP response that error mapping reads. */
export interface ResponseSnapshot {
  /** HTTP status code. */
  status: number;
  /** Response headers. */
  headers: Headers;
  /** The response body, possibly empty. */
  body: Uint8Array;
}

const MAX_SERVER_MESSAGE_LENGTH = 200;

/**
 * Extracts the server's error message: the `error` field of a JSON body, the
 * `<title>` of an HTML page (as proxies send), or the trimmed text body.
 * Long messages are cut to 200 characters.
 */
export function readServerMessage(response: ResponseSnapshot): string {
  const contentType = response.headers.get("content-type") ?? "";
  const text = new TextDecoder().decode(response.body);
  let message = text.trim();
  if (contentType.includes("json")) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (
        typeof parsed === "object" && parsed !== null && "error" in parsed &&
        typeof parsed.error === "string"
      ) {
        message = parsed.error;
      }
    } catch {
      // Not JSON after all: keep the text.
    }
  } else if (contentType.includes("html")) {
    const title = /<title[^>]*>([^<]*)<\/title>/i.exec(text)?.[1];
    message = (title ?? text.replace(/<[^>]*>/g, " ")).replace(/\s+/g, " ")
      .trim();
  }
  if (message.length > MAX_SERVER_MESSAGE_LENGTH) {
    message = message.slice(0, MAX_SERVER_MESSAGE_LENGTH) + "…";
  }
  return message;
}

function parseNumberHeader(headers: Headers, name: string): number | undefined {
  const raw = headers.get(name);
  if (raw === null || raw.trim() === "") return undefined;
  const value = Number(raw);
  return Number.isFinite(value) ? value : undefined;
}

/**
 * Parses `Retry-After` (delay in seconds or an HTTP date) into milliseconds
 * from `now`. Returns undefined when the header is absent or invalid.
 */
export function parseRetryAfter(
  headers: Headers,
  now: number,
): number | undefined {
  const raw = headers.get("retry-after")?.trim();
  if (raw === undefined || raw === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Number(raw) * 1000;
  const date = Date.parse(raw);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

const MAX_QUOTED_KEY_LENGTH = 200;

/**
 * Formats a key for messages, with quotes and escapes for control
 * characters. A key over 200 characters is cut and its length given, so
 * that a huge key cannot make a huge message. The `key` field keeps it
 * whole.
 */
export function quoteKey(key: string): string {
  if (key.length <= MAX_QUOTED_KEY_LENGTH) return JSON.stringify(key);
  const head = JSON.stringify(key.slice(0, MAX_QUOTED_KEY_LENGTH));
  return `${head.slice(0, -1)}…" (${key.length} characters)`;
}

// Word characters. A secret counts as found only where none is directly
// before or after it, so that a short token such as "t" does not redact the
// letter in "not found".
const TOKEN_CHARACTER = "[A-Za-z0-9_]";
const WORD_EDGE_REGEXP = /^[A-Za-z0-9_]$/;

/**
 * Replaces each secret in `text`, raw or percent-encoded, with
 * `[redacted]`, wherever it occurs as a whole token. Servers and proxies
 * may echo request headers in error bodies.
 */
export function redactSecrets(
  text: string,
  secrets: readonly string[],
): string {
  let redacted = text;
  for (const secret of secrets) {
    if (secret === "") continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) {
      const escaped = form.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      // A boundary matters only at an edge that is itself a word character.
      const before = WORD_EDGE_REGEXP.test(form.charAt(0))
        ? `(?<!${TOKEN_CHARACTER})`
        : "";
      const after = WORD_EDGE_REGEXP.test(form.charAt(form.length - 1))
        ? `(?!${TOKEN_CHARACTER})`
        : "";
      const pattern = new RegExp(`${before}${escaped}${after}`, "g");
      redacted = redacted.replace(pattern, "[redacted]");
    }
  }
  return redacted;
}

/**
 * Builds the typed error for a non-2xx response. The message names the key
 * (or the method and path when there is no key), the status and the
 * server's message, with every one of `secrets` redacted from it.
 */
export function errorFromResponse(
  response: ResponseSnapshot,
  context: RequestContext,
  now: number = Date.now(),
  secrets: readonly string[] = [],
): ResponseError {
  const serverMessage = redactSecrets(readServerMessage(response), secrets);
  const requestId = response.headers.get("x-request-id") ?? undefined;
  const options: ResponseErrorOptions = {
    ...context,
    status: response.status,
    serverMessage,
    ...(requestId === undefined ? {} : { requestId }),
  };
  const target = context.key === undefined
    ? `${context.method ?? "request"} ${context.path ?? ""}`.trim()
    : `key ${quoteKey(context.key)}`;
  const subject = target.charAt(0).toUpperCase() + target.slice(1);
  const detail = serverMessage === "" ? "" : `: ${serverMessage}`;
  switch (response.status) {
    case 404:
      return new NotFoundError(`${subject} not found (404${detail})`, options);
    case 401:
      return new UnauthorizedError(
        `Unauthorized (401${detail}) for ${target}: the token is missing, ` +
          "invalid or revoked; check the client's token option",
        options,
      );
    case 403:
      return new ForbiddenError(
        `Access to ${target} is forbidden (403${detail}): the token's ` +
          "permissions do not cover it",
        options,
      );
    case 413:
      return new PayloadTooLargeError(
        `Request body for ${target} exceeds the server's body size limit ` +
          "(413); store a smaller value or raise the server's limit",
        options,
      );
    case 429: {
      const retryAfter = parseRetryAfter(response.headers, now);
      const reset = parseNumberHeader(response.headers, "ratelimit-reset");
      const limit = parseNumberHeader(response.headers, "ratelimit-limit");
      const remaining = parseNumberHeader(
        response.headers,
        "ratelimit-remaining",
      );
      const waitSeconds = retryAfter === undefined
        ? reset
        : Math.ceil(retryAfter / 1000);
      const hint = waitSeconds === undefined
        ? ""
        : `; retry in ${waitSeconds} s`;
      return new RateLimitError(
        `Rate limit exceeded (429${detail}) for ${target}${hint}`,
        {
          ...options,
          ...(limit === undefined ? {} : { limit }),
          ...(remaining === undefined ? {} : { remaining }),
          ...(reset === undefined ? {} : { reset }),
          ...(retryAfter === undefined ? {} : { retryAfter }),
        },
      );
    }
    default:
      return new ResponseError(
        `${subject} failed with status ${response.status}${detail}`,
        options,
      );
  }
}
