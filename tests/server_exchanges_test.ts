// Replays the HTTP exchanges recorded from real Stash v0.13.0 servers against
// the in-process server in v0.13.0 mode, one fresh server per recorded server
// configuration, in recorded order.

import assert from "node:assert/strict";
import {
  createStashServer,
  type StashServer,
  type StashServerOptions,
} from "../testing.ts";

interface RecordedExchange {
  note: string;
  server: string;
  request: {
    method: string;
    path: string;
    headers: Record<string, string>;
    body?: string | null;
  };
  response: {
    status: number;
    headers: Record<string, string>;
    body: string;
  };
}

interface Recording {
  tokens: { admin: string; readonly: string };
  exchanges: RecordedExchange[];
}

const FIXTURE = new URL(
  "./fixtures/stash-v0.13.0-exchanges.json",
  import.meta.url,
);
const recording: Recording = JSON.parse(await Deno.readTextFile(FIXTURE));

const PLACEHOLDER_REGEXP = /^<(\d+) characters>$/;
const TRUNCATED_REGEXP = /^([\s\S]*)\.\.\. \((\d+) characters\)$/;
const TIMESTAMP_REGEXP = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z/g;
const HASH_REGEXP = /"hash":"[0-9a-f]{7}"/g;
const REQUEST_ID_REGEXP = /^[0-9a-f]{40}$/;

// Headers compared exactly when recorded, and required to be absent when not.
const EXACT_HEADERS = [
  "content-type",
  "app-name",
  "app-version",
  "ratelimit-limit",
  "ratelimit-reset",
  "x-rate-limit-limit",
  "x-rate-limit-duration",
  "location",
  "allow",
  "connection",
];

/** Returns a clock that advances one second per call, so buckets refill between requests. */
function steppingClock(): () => number {
  let now = Date.UTC(2026, 11, 3, 22, 49, 44);
  return () => (now += 1000);
}

function serverFor(name: string): StashServer {
  const base: StashServerOptions = { version: "v0.13.0" };
  switch (name) {
    case "plain":
      return createStashServer({
        ...base,
        rateLimit: { rate: 100 },
        now: steppingClock(),
      });
    case "auth":
      return createStashServer({
        ...base,
        rateLimit: { rate: 100 },
        now: steppingClock(),
        tokens: [
          { token: recording.tokens.admin, permissions: { "*": "rw" } },
          { token: recording.tokens.readonly, permissions: { "app/*": "r" } },
        ],
      });
    case "git":
      return createStashServer({
        ...base,
        rateLimit: { rate: 100 },
        now: steppingClock(),
        history: true,
      });
    case "limited": {
      // A frozen clock: the recorded burst happened within one second.
      const frozen = Date.UTC(2026, 11, 3, 22, 49, 45);
      return createStashServer({
        ...base,
        rateLimit: { rate: 5 },
        now: () => frozen,
      });
    }
    default:
      throw new Error(`Unknown recorded server ${JSON.stringify(name)}`);
  }
}

function requestBody(body: string | null | undefined): string | null {
  if (body === undefined || body === null) return null;
  const placeholder = PLACEHOLDER_REGEXP.exec(body);
  return placeholder ? "x".repeat(Number(placeholder[1])) : body;
}

function send(
  server: StashServer,
  exchange: RecordedExchange,
): Promise<Response> {
  const { method, path, headers, body } = exchange.request;
  const hasBody = method !== "GET" && method !== "HEAD";
  return server.fetch(`http://stash.test${path}`, {
    method,
    headers,
    body: hasBody ? requestBody(body) : null,
  });
}

/** Replaces the parts that vary run to run: timestamps and commit hashes. */
function canonical(body: string): string {
  return body.replace(TIMESTAMP_REGEXP, "<time>").replace(
    HASH_REGEXP,
    '"hash":"<hash>"',
  );
}

function assertHeaders(
  actual: Headers,
  exchange: RecordedExchange,
  server: string,
): void {
  const recorded = exchange.response.headers;
  for (const name of EXACT_HEADERS) {
    assert.equal(actual.get(name), recorded[name] ?? null, `header ${name}`);
  }
  if (recorded["x-request-id"] === undefined) {
    assert.equal(actual.get("x-request-id"), null, "x-request-id absent");
  } else {
    assert.match(actual.get("x-request-id") ?? "", REQUEST_ID_REGEXP);
  }
  assertRemaining(actual, recorded, server);
}

// Only the frozen-clock server reproduces the recorded counts: the others
// refilled at real-time pace while recording, so their counts depend on the
// recorder's timing. Those are checked for shape and range.
function assertRemaining(
  actual: Headers,
  recorded: Record<string, string>,
  server: string,
): void {
  const remaining = actual.get("ratelimit-remaining");
  if (server === "limited") {
    assert.equal(remaining, recorded["ratelimit-remaining"]);
    return;
  }
  assert.match(remaining ?? "", /^\d+$/);
  assert.ok(Number(remaining) < Number(recorded["ratelimit-limit"]));
}

function assertBody(
  actual: string,
  headers: Headers,
  exchange: RecordedExchange,
): void {
  const recordedBody = exchange.response.body;
  const recordedLength = exchange.response.headers["content-length"];
  const truncated = TRUNCATED_REGEXP.exec(recordedBody);
  const varying = canonical(recordedBody) !== recordedBody;
  const head = exchange.request.method === "HEAD";
  if (recordedLength !== undefined && !head) {
    assert.equal(
      headers.get("content-length"),
      String(new TextEncoder().encode(actual).length),
      "content-length matches the body",
    );
  }
  if (truncated) {
    assertTruncatedList(actual, truncated, exchange);
    return;
  }
  if (varying) {
    assert.equal(canonical(actual), canonical(recordedBody));
    assertTimestampShapes(actual);
    return;
  }
  assert.equal(actual, recordedBody);
  if (recordedLength !== undefined) {
    assert.equal(headers.get("content-length"), recordedLength);
  }
}

// A long list body was cut when recorded: compare the recorded head up to
// its last complete entry, and the total length within what timestamp
// fractions (0 to 9 digits, two per entry) can change.
function assertTruncatedList(
  actual: string,
  truncated: RegExpExecArray,
  exchange: RecordedExchange,
): void {
  const head = truncated[1] ?? "";
  const recordedTotal = Number(truncated[2]);
  const complete = head.slice(0, head.lastIndexOf("}") + 1);
  assert.ok(
    canonical(actual).startsWith(canonical(complete)),
    `list head of ${JSON.stringify(exchange.note)}`,
  );
  const entries: unknown[] = JSON.parse(actual);
  const slack = entries.length * 2 * 10;
  assert.ok(
    Math.abs(actual.length - recordedTotal) <= slack,
    `list length ${actual.length} near ${recordedTotal}`,
  );
  assertTimestampShapes(actual);
}

function assertTimestampShapes(body: string): void {
  const parsed: unknown = JSON.parse(body);
  assert.ok(Array.isArray(parsed));
  for (const entry of parsed as Record<string, unknown>[]) {
    for (const field of ["CreatedAt", "UpdatedAt", "timestamp"]) {
      if (field in entry) {
        assert.match(String(entry[field]), /^\S+Z$/);
        assert.equal(String(entry[field]).replace(TIMESTAMP_REGEXP, ""), "");
      }
    }
  }
}

const servers = [...new Set(recording.exchanges.map((e) => e.server))];

Deno.test("recorded v0.13.0 exchanges replay", async (t) => {
  assert.equal(recording.exchanges.length, 72);
  for (const name of servers) {
    await t.step(`${name} server`, async (t) => {
      const server = serverFor(name);
      const exchanges = recording.exchanges.filter((e) => e.server === name);
      try {
        for (const [index, exchange] of exchanges.entries()) {
          await t.step(`${index} ${exchange.note}`, async () => {
            const response = await send(server, exchange);
            const body = await response.text();
            assert.equal(response.status, exchange.response.status);
            assertHeaders(response.headers, exchange, name);
            assertBody(body, response.headers, exchange);
          });
        }
      } finally {
        await server.close();
      }
    });
  }
});
