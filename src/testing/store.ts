/**
 * The key-value store of the in-process Stash server: values, formats,
 * nanosecond timestamps, git-style history, and the server's key
 * normalisation.
 *
 * @module
 */

/** The eight formats the server accepts, case-sensitive. */
export const FORMATS: ReadonlySet<string> = new Set([
  "text",
  "json",
  "yaml",
  "xml",
  "toml",
  "ini",
  "hcl",
  "shell",
]);

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  text: "text/plain",
  ini: "text/plain",
  hcl: "text/plain",
  json: "application/json",
  yaml: "application/yaml",
  xml: "application/xml",
  toml: "application/toml",
  shell: "text/x-shellscript",
};

/** Returns the Content-Type of a read for `format`; unknown formats are binary. */
export function contentTypeOf(format: string): string {
  return CONTENT_TYPES[format] ?? "application/octet-stream";
}

/** Returns `format` when it is one of the eight formats, else `text`. */
export function acceptFormat(format: string | null | undefined): string {
  return format !== null && format !== undefined && FORMATS.has(format)
    ? format
    : "text";
}

// Unicode White_Space, which Go's strings.TrimSpace trims. Unlike
// String.prototype.trim it excludes U+FEFF.
const GO_SPACE =
  "\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005" +
  "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";

/** Trims leading and trailing whitespace the way Go's `strings.TrimSpace` does. */
export function trimGoSpace(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && GO_SPACE.includes(value[start] as string)) start++;
  while (end > start && GO_SPACE.includes(value[end - 1] as string)) end--;
  return value.slice(start, end);
}

/** Trims every leading and trailing `/`. */
export function trimSlashes(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && value[start] === "/") start++;
  while (end > start && value[end - 1] === "/") end--;
  return value.slice(start, end);
}

/**
 * Normalises a decoded key as the Stash server does: trims whitespace, trims
 * edge slashes, then replaces every ASCII space with `_`.
 */
export function normalizeKey(decoded: string): string {
  return trimSlashes(trimGoSpace(decoded)).replaceAll(" ", "_");
}

/** Reports whether `key` has `secrets` as a whole path segment. */
export function isSecretKey(key: string): boolean {
  return key.split("/").includes("secrets");
}

const ZK_PREFIX = "$ZK$";

/** Reports whether `value` starts with `$ZK$` followed by at least one byte. */
export function isZkValue(value: Uint8Array): boolean {
  if (value.length <= ZK_PREFIX.length) return false;
  for (let i = 0; i < ZK_PREFIX.length; i++) {
    if (value[i] !== ZK_PREFIX.charCodeAt(i)) return false;
  }
  return true;
}

const NANOS_PER_MS = 1_000_000n;
const NANOS_PER_SECOND = 1_000_000_000n;

/**
 * Formats nanoseconds since the epoch as RFC 3339 in UTC with the fraction
 * trimmed of trailing zeros (0 to 9 digits), as Go's `time.RFC3339Nano` does.
 */
export function formatNanos(nanos: bigint): string {
  const seconds = nanos / NANOS_PER_SECOND;
  const fraction = (nanos % NANOS_PER_SECOND).toString().padStart(9, "0")
    .replace(/0+$/, "");
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  return fraction === "" ? `${base}Z` : `${base}.${fraction}Z`;
}

/** Formats milliseconds since the epoch as RFC 3339 in UTC, whole seconds. */
export function formatSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19) +
    "Z";
}

/**
 * A clock of strictly increasing nanosecond timestamps on top of a
 * millisecond clock. The sub-millisecond part is a deterministic spread, so
 * most timestamps have nine fraction digits like a real server's.
 */
export class NanoClock {
  #now: () => number;
  #last = 0n;
  #sequence = 0n;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Returns the current time in milliseconds from the injected clock. */
  nowMs(): number {
    return this.#now();
  }

  /** Returns a timestamp in nanoseconds, greater than every earlier one. */
  next(): bigint {
    this.#sequence++;
    const spread = (this.#sequence * 7_919_113n) % NANOS_PER_MS;
    const candidate = BigInt(Math.floor(this.#now())) * NANOS_PER_MS + spread;
    this.#last = candidate > this.#last ? candidate : this.#last + 1n;
    return this.#last;
  }
}

/** One stored value with its metadata. */
export interface StoredEntry {
  /** The stored bytes. */
  value: Uint8Array;
  /** The format label. */
  format: string;
  /** Creation time in nanoseconds since the epoch; kept on overwrite. */
  createdNs: bigint;
  /** Time of the last write in nanoseconds since the epoch. */
  updatedNs: bigint;
}

/** The keys and values of one server. */
export class Store {
  #entries = new Map<string, StoredEntry>();
  #clock: NanoClock;

  constructor(clock: NanoClock) {
    this.#clock = clock;
  }

  /** Returns the entry stored under `key`. */
  get(key: string): StoredEntry | undefined {
    return this.#entries.get(key);
  }

  /** Creates or overwrites `key`; returns true when the key is new. */
  set(key: string, value: Uint8Array, format: string): boolean {
    const now = this.#clock.next();
    const existing = this.#entries.get(key);
    const createdNs = existing?.createdNs ?? now;
    this.#entries.set(key, { value, format, createdNs, updatedNs: now });
    return existing === undefined;
  }

  /** Deletes `key`; returns the removed entry. */
  delete(key: string): StoredEntry | undefined {
    const existing = this.#entries.get(key);
    this.#entries.delete(key);
    return existing;
  }

  /** Returns every entry, most recently updated first. */
  list(): Array<[string, StoredEntry]> {
    return [...this.#entries].sort(([, a], [, b]) => {
      if (a.updatedNs === b.updatedNs) return 0;
      return a.updatedNs > b.updatedNs ? -1 : 1;
    });
  }

  /** Returns every key in code-unit order. */
  keys(): string[] {
    return [...this.#entries.keys()].sort();
  }

  /** Removes every key. */
  clear(): void {
    this.#entries.clear();
  }
}

/** One entry of `GET /kv/history/{key}`, in the server's field order. */
export interface HistoryEntry {
  /** Short commit hash, 7 hex characters. */
  hash: string;
  /** Commit time, RFC 3339 in UTC, whole seconds. */
  timestamp: string;
  /** `token:` plus the first 8 characters of the token, or `stash`. */
  author: string;
  /** `create`, `update` or `delete` (newest), `set` or `delete` (v0.13.0). */
  operation: string;
  /** The format at that revision. */
  format: string;
  /** Standard base64 of the value at that revision; empty for deletes. */
  value: string;
}

/** The maximum number of history entries the server returns per key. */
export const HISTORY_LIMIT = 50;

/** Git-style history of every key, newest entry first. */
export class HistoryLog {
  #entries = new Map<string, HistoryEntry[]>();
  #commits = 0;

  /** Records one commit for `key`, dropping entries beyond the limit. */
  append(key: string, entry: Omit<HistoryEntry, "hash">): void {
    this.#commits++;
    const hash = shortHash(`${this.#commits}\0${key}\0${entry.operation}`);
    const list = this.#entries.get(key) ?? [];
    list.unshift({ hash, ...entry });
    list.length = Math.min(list.length, HISTORY_LIMIT);
    this.#entries.set(key, list);
  }

  /** Returns the history of `key`, newest first; empty when unknown. */
  entries(key: string): HistoryEntry[] {
    return [...(this.#entries.get(key) ?? [])];
  }

  /** Removes all history. */
  clear(): void {
    this.#entries.clear();
  }
}

// FNV-1a over UTF-16 code units, printed as 7 hex digits. Any stable spread
// works here because only the shape of a git short hash matters.
function shortHash(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0").slice(0, 7);
}

/** Encodes bytes as standard base64 with padding. */
export function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

/**
 * Decodes strict standard base64 (padding required) as Go's
 * `base64.StdEncoding` does, skipping CR and LF; returns undefined when the
 * text is not valid.
 */
export function decodeStrictBase64(text: string): Uint8Array | undefined {
  const compact = text.replace(/[\r\n]/g, "");
  if (compact.length % 4 !== 0) return undefined;
  if (
    !/^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(compact)
  ) {
    return undefined;
  }
  const binary = atob(compact);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

const GO_JSON_ESCAPES = /[<>&\u2028\u2029]/g;

/**
 * Encodes `value` as Go's `json.Encoder` does: compact, with `<`, `>`, `&`,
 * U+2028 and U+2029 escaped, and a trailing newline.
 */
export function encodeGoJson(value: unknown): string {
  return encodeGoJsonLine(value) + "\n";
}

/** Encodes `value` as Go's `json.Marshal` does, without a trailing newline. */
export function encodeGoJsonLine(value: unknown): string {
  return JSON.stringify(value).replace(
    GO_JSON_ESCAPES,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
