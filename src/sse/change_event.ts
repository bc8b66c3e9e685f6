/**
 * The change notifications that Stash publishes to subscribers, and the
 * check that turns the JSON data of an event into one.
 *
 * @module
 */

/** The kind of change made to a key. */
export type ChangeAction = "create" | "update" | "delete";

/** One change notification. It carries no value: read the key for that. */
export interface ChangeEvent {
  /** The key as the server normalised it. */
  key: string;
  /** Whether the key was created, updated or deleted. */
  action: ChangeAction;
  /** When the change happened; Stash sends whole seconds in UTC. */
  timestamp: Date;
}

/** The set of keys that a subscription receives events for. */
export type SubscriptionTarget =
  | { kind: "key"; key: string }
  | { kind: "prefix"; prefix: string }
  | { kind: "all" };

const MAX_PREVIEW_LENGTH = 200;

const ACTIONS: ReadonlySet<string> = new Set(["create", "update", "delete"]);

const RFC3339_REGEXP =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2}))$/i;

/**
 * Parses the `data` of a `change` event: a JSON object with a non-empty
 * string `key`, an `action` of `create`, `update` or `delete`, and an RFC
 * 3339 `timestamp`. Other fields are ignored, so newer servers may add some.
 *
 * @throws {TypeError} when the data is not such an object.
 */
export function parseChangeEvent(data: string): ChangeEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch (error) {
    throw new TypeError(
      `Invalid change event: data is not JSON: ${preview(data)}`,
      {
        cause: error,
      },
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new TypeError(
      `Invalid change event: expected an object: ${preview(data)}`,
    );
  }
  const { key, action, timestamp } = parsed as Record<string, unknown>;
  if (typeof key !== "string" || key === "") {
    throw new TypeError(`Invalid change event: missing key: ${preview(data)}`);
  }
  if (typeof action !== "string" || !ACTIONS.has(action)) {
    throw new TypeError(
      `Invalid change event: action is not create, update or delete: ${
        preview(data)
      }`,
    );
  }
  const date = typeof timestamp === "string"
    ? parseRfc3339(timestamp)
    : undefined;
  if (date === undefined) {
    throw new TypeError(
      `Invalid change event: timestamp is not RFC 3339: ${preview(data)}`,
    );
  }
  return { key, action: action as ChangeAction, timestamp: date };
}

function preview(data: string): string {
  return data.length > MAX_PREVIEW_LENGTH
    ? `${data.slice(0, MAX_PREVIEW_LENGTH)}…`
    : data;
}

/**
 * Parses an RFC 3339 date-time such as `2026-01-03T10:30:00Z`, checking the
 * ranges of every field. Returns undefined when the text is not one.
 */
export function parseRfc3339(text: string): Date | undefined {
  const match = RFC3339_REGEXP.exec(text);
  if (match === null) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(
    Number,
  ) as [number, number, number, number, number, number];
  const offsetHour = Number(match[9] ?? 0);
  const offsetMinute = Number(match[10] ?? 0);
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  // NOTE: a leap second (:60) is rejected because Date cannot represent it;
  // Go's time package, which Stash uses, never formats one.
  const valid = month >= 1 && month <= 12 && day >= 1 &&
    day <= daysInMonth && hour <= 23 && minute <= 59 && second <= 59 &&
    offsetHour <= 23 && offsetMinute <= 59;
  if (!valid) return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Reports whether an event for `key` belongs to `target`: the same key, a
 * key below the prefix (`prefix + "/"`, segment-aligned), or any key.
 */
export function matchesTarget(
  target: SubscriptionTarget,
  key: string,
): boolean {
  switch (target.kind) {
    case "key":
      return key === target.key;
    case "prefix": {
      const prefix = target.prefix.endsWith("/")
        ? target.prefix
        : `${target.prefix}/`;
      return key.startsWith(prefix);
    }
    case "all":
      return true;
  }
}
