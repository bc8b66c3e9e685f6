/**
 * Key validation, the server's key normalisation, and request paths.
 *
 * @module
 */

import { quoteKey } from "./errors.ts";

/** Key encoding in request paths: one segment, or literal slashes. */
export type KeyEncoding = "segment" | "path";

// Go's unicode.IsSpace, which strings.TrimSpace uses on the server. It
// differs from JavaScript's trim(): U+0085 is trimmed and U+FEFF is not.
const GO_SPACE = "\\t\\n\\v\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A" +
  "\\u2028\\u2029\\u202F\\u205F\\u3000";
const EDGE_SPACE_REGEXP = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, "g");
const EDGE_SLASH_REGEXP = /^\/+|\/+$/g;
// C0 and C1 control characters and DEL.
// deno-lint-ignore no-control-regex
const CONTROL_REGEXP = /[\u0000-\u001F\u007F-\u009F]/;
const PING_SUFFIX_REGEXP = /(^|\/)ping$/i;

/**
 * Returns the key the server stores for `key`: surrounding whitespace
 * trimmed (as Go's `strings.TrimSpace`), then leading and trailing slashes,
 * then every space replaced by `_`. So `" /my key/ "` is stored as `my_key`.
 */
export function normalizeKey(key: string): string {
  if (typeof key !== "string") {
    throw new TypeError(
      `Invalid key: expected a string, got ${describe(key)}`,
    );
  }
  return key.replace(EDGE_SPACE_REGEXP, "").replace(EDGE_SLASH_REGEXP, "")
    .replaceAll(" ", "_");
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value;
}

/**
 * Checks that `value` is a string without lone surrogates, so that it can
 * be percent-encoded without loss. Returns it unchanged.
 */
export function validateText(value: unknown, name: string): string {
  if (typeof value !== "string") {
    throw new TypeError(
      `Invalid ${name}: expected a string, got ${describe(value)}`,
    );
  }
  if (!value.isWellFormed()) {
    throw new TypeError(
      `Invalid ${name} ${
        quoteKey(value)
      }: it contains a lone UTF-16 surrogate, which has no UTF-8 form`,
    );
  }
  return value;
}

/**
 * Validates a key and returns it unchanged. Throws a `TypeError` for a
 * non-string, a key that is empty after the server's normalisation, the keys
 * `.` and `..` (URL parsers resolve them before sending), and keys with
 * control characters.
 */
export function validateKey(key: unknown): string {
  const text = validateText(key, "key");
  const quoted = quoteKey(text);
  if (normalizeKey(text) === "") {
    throw new TypeError(
      `Invalid key ${quoted}: it is empty once the server trims whitespace ` +
        "and slashes",
    );
  }
  const stored = normalizeKey(text);
  if (stored === "." || stored === "..") {
    // The server would store "./" as ".", which no request can read again,
    // because URL parsers resolve a "." or ".." segment before sending.
    throw new TypeError(
      `Invalid key ${quoted}: it is stored as ${
        JSON.stringify(stored)
      }, and URLs cannot address the keys "." and ".."`,
    );
  }
  if (CONTROL_REGEXP.test(text)) {
    throw new TypeError(
      `Invalid key ${quoted}: control characters are not allowed in keys`,
    );
  }
  return text;
}

/**
 * Validates a list prefix: any string, the empty one included, that has no
 * lone surrogates or control characters.
 */
export function validatePrefix(prefix: unknown): string {
  const text = validateText(prefix, "prefix");
  if (CONTROL_REGEXP.test(text)) {
    throw new TypeError(
      `Invalid prefix ${
        quoteKey(text)
      }: control characters are not allowed in keys`,
    );
  }
  return text;
}

function encodeSegments(key: string): string {
  // Edge slashes are trimmed by the server anyway, and sent literally they
  // would form a `//` that the server responds to with a redirect.
  const segments = key.replace(EDGE_SLASH_REGEXP, "").split("/");
  for (const segment of segments) {
    if (segment === "" || segment === "." || segment === "..") {
      throw new TypeError(
        `Invalid key ${JSON.stringify(key)} for keyEncoding "path": ` +
          `it has an empty, "." or ".." segment; use keyEncoding "segment"`,
      );
    }
  }
  const encoded = segments.map(encodeURIComponent).join("/");
  // A literal slash after these words would route to the history or
  // subscription endpoint instead of the key.
  return encoded.replace(/^(history|subscribe)\//, "$1%2F");
}

/** Percent-encodes a validated key for the path after `/kv/`. */
export function encodeKey(key: string, encoding: KeyEncoding): string {
  return encoding === "segment" ? encodeURIComponent(key) : encodeSegments(key);
}

/**
 * Reports whether a GET of `key` would hit the server's health check: any
 * GET whose decoded path ends in a `ping` segment (any case) returns `pong`.
 */
export function hasPingSuffix(key: string): boolean {
  return PING_SUFFIX_REGEXP.test(key);
}

/** Returns the path of a key for writes and deletes. */
export function keyPath(key: string, encoding: KeyEncoding): string {
  return `/kv/${encodeKey(key, encoding)}`;
}

/**
 * Returns the path of a key for reads (GET and HEAD). Keys ending in a
 * `ping` segment get an encoded trailing slash, which the server trims from
 * the key but which keeps the health check from responding.
 */
export function readPath(key: string, encoding: KeyEncoding): string {
  const suffix = hasPingSuffix(key) ? "%2F" : "";
  return `${keyPath(key, encoding)}${suffix}`;
}

/** Returns the history path of a key, with the same `ping` workaround. */
export function historyPath(key: string, encoding: KeyEncoding): string {
  const suffix = hasPingSuffix(key) ? "%2F" : "";
  return `/kv/history/${encodeKey(key, encoding)}${suffix}`;
}
