/**
 * Key metadata from the list endpoint and entries from the history endpoint,
 * parsed from both field spellings that Stash servers send.
 *
 * @module
 */

import { StashError } from "./errors.ts";

/** Metadata of one stored key, as the list endpoint reports it. */
export interface KeyInfo {
  /** The key as the server stores it (normalised). */
  key: string;
  /**
   * Size in bytes of the stored value: for a zero-knowledge value the
   * envelope's length, for a server-side secret the ciphertext's length.
   */
  size: number;
  /** The value's format, normally one of {@link Format}. */
  format: string;
  /**
   * Whether the key is under a `secrets` path segment; undefined when the
   * server does not report it (v0.13.0).
   */
  secret?: boolean;
  /**
   * Whether the stored value starts with `$ZK$`; undefined when the server
   * does not report it (v0.13.0).
   */
  zkEncrypted?: boolean;
  /** When the key was first created; kept across overwrites. */
  createdAt: Date;
  /** When the value was last written. */
  updatedAt: Date;
}

/** One revision of a key from the server's git history. */
export interface HistoryEntry {
  /** Short commit hash (7 hex characters on current servers). */
  hash: string;
  /** Commit time, with seconds precision. */
  timestamp: Date;
  /** `token:` plus the token's first 8 characters, a user name, or the server's default author. */
  author: string;
  /**
   * Kind of change: `create`, `update` or `delete` on current servers,
   * `set` or `delete` on v0.13.0 and in older commits.
   */
  operation: string;
  /** The value's format at this revision. */
  format: string;
  /** The value at this revision (decrypted for zero-knowledge values); empty for deletes. */
  value: Uint8Array;
}

// RFC 3339 with 0 to 9 fraction digits, as Go formats time.Time.
const TIMESTAMP_REGEXP =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Parses an RFC 3339 timestamp with up to 9 fraction digits. `Date` keeps
 * milliseconds, so digits beyond the third are dropped.
 */
export function parseTimestamp(value: unknown, field: string): Date {
  const match = typeof value === "string" ? TIMESTAMP_REGEXP.exec(value) : null;
  if (match === null) {
    throw new StashError(
      `Invalid ${field} in server response: expected an RFC 3339 ` +
        `timestamp, got ${JSON.stringify(value)}`,
    );
  }
  const [, year, month, day, hour, minute, second, fraction, zone] = match;
  const millis = (fraction ?? "").padEnd(3, "0").slice(0, 3);
  const offset = zone === "Z" || zone === "z" ? "Z" : zone;
  const date = new Date(
    `${year}-${month}-${day}T${hour}:${minute}:${second}.${millis}${offset}`,
  );
  if (Number.isNaN(date.getTime())) {
    throw new StashError(
      `Invalid ${field} in server response: ${JSON.stringify(value)} is ` +
        "not a valid date",
    );
  }
  return date;
}

function field(
  entry: Record<string, unknown>,
  snake: string,
  pascal: string,
): unknown {
  return snake in entry ? entry[snake] : entry[pascal];
}

function invalid(problem: string, value: unknown): StashError {
  const quoted = JSON.stringify(value) ?? String(value);
  return new StashError(
    `Invalid list entry from server: ${problem}, got ${quoted.slice(0, 200)}`,
  );
}

/**
 * Parses one list entry, accepting snake_case (current servers) and
 * PascalCase (v0.13.0) field names per entry.
 */
export function parseKeyInfo(entry: unknown): KeyInfo {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    throw invalid("expected an object", entry);
  }
  const record = entry as Record<string, unknown>;

  const key = field(record, "key", "Key");
  const size = field(record, "size", "Size");
  const format = field(record, "format", "Format");
  if (typeof key !== "string") throw invalid("key must be a string", entry);
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw invalid("size must be a non-negative integer", entry);
  }
  if (typeof format !== "string") {
    throw invalid("format must be a string", entry);
  }

  const info: KeyInfo = {
    key,
    size,
    format,
    createdAt: parseTimestamp(
      field(record, "created_at", "CreatedAt"),
      "created_at",
    ),
    updatedAt: parseTimestamp(
      field(record, "updated_at", "UpdatedAt"),
      "updated_at",
    ),
  };
  const secret = field(record, "secret", "Secret");
  if (typeof secret === "boolean") info.secret = secret;
  const zkEncrypted = field(record, "zk_encrypted", "ZkEncrypted");
  if (typeof zkEncrypted === "boolean") info.zkEncrypted = zkEncrypted;
  return info;
}

function parseJson(body: Uint8Array, description: string): unknown {
  const text = new TextDecoder().decode(body);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new StashError(
      `Invalid ${description} from server: the body is not valid JSON ` +
        `(${body.length} bytes, starting ${JSON.stringify(text.slice(0, 60))})`,
      { cause: error },
    );
  }
}

/**
 * Parses a list response body. The literal `null`, which the server sends
 * when a prefix matches nothing, is an empty list.
 */
export function parseKeyList(body: Uint8Array): KeyInfo[] {
  const parsed = parseJson(body, "list response");
  if (parsed === null) return [];
  if (!Array.isArray(parsed)) {
    throw invalid("expected a JSON array or null", parsed);
  }
  return parsed.map(parseKeyInfo);
}

/** A history entry whose value is still the server's base64 text. */
export interface RawHistoryEntry extends Omit<HistoryEntry, "value"> {
  /** The value at this revision, standard base64. */
  value: string;
}

function historyField(
  entry: Record<string, unknown>,
  name: string,
): string {
  const value = entry[name];
  if (typeof value !== "string") {
    throw new StashError(
      `Invalid history entry from server: ${name} must be a string, got ` +
        (JSON.stringify(value) ?? String(value)).slice(0, 200),
    );
  }
  return value;
}

/** Parses a history response body into entries with base64 values. */
export function parseHistory(body: Uint8Array): RawHistoryEntry[] {
  const parsed = parseJson(body, "history response");
  if (parsed === null) return [];
  if (!Array.isArray(parsed)) {
    throw new StashError(
      "Invalid history response from server: expected a JSON array",
    );
  }
  return parsed.map((entry: unknown) => {
    if (typeof entry !== "object" || entry === null) {
      throw new StashError(
        "Invalid history entry from server: expected an object",
      );
    }
    const record = entry as Record<string, unknown>;
    return {
      hash: historyField(record, "hash"),
      timestamp: parseTimestamp(record.timestamp, "timestamp"),
      author: historyField(record, "author"),
      operation: historyField(record, "operation"),
      format: historyField(record, "format"),
      value: record.value === undefined || record.value === null
        ? ""
        : historyField(record, "value"),
    };
  });
}
