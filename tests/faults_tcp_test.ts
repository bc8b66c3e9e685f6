/**
 * Raw TCP faults on 127.0.0.1: refused connections, connections closed
 * before the headers or mid-body, stalled and dripping bodies, lost write
 * responses and event streams that end every few events or mid-line.
 */

import assert from "node:assert/strict";
import {
  type ChangeEvent,
  Client,
  type ClientOptions,
  ConnectionError,
  NotFoundError,
  RateLimitError,
  ResponseError,
  type RetryEvent,
  type StashError,
  type StateChangeInfo,
  type Subscription,
  type SubscriptionState,
  TimeoutError,
} from "../mod.ts";
import { createStashServer, type StashServer } from "../testing.ts";
import {
  type Behavior,
  changeData,
  closeBeforeHeaders,
  closedPort,
  closeMidBody,
  dripBody,
  eventStream,
  head,
  respond,
  stallAfterHeaders,
  TcpServer,
} from "./_tcp_server.ts";

const KEY = "app/config";
const TIMEOUT = 200;
const RETRIES = 2;
/** Slack on top of the timeouts for scheduling and loopback I/O. */
const MARGIN = 400;

const unhandled: unknown[] = [];
globalThis.addEventListener("unhandledrejection", (event) => {
  unhandled.push(event.reason);
  event.preventDefault();
});

function assertNoUnhandledRejections(): void {
  assert.deepEqual(unhandled, [], "unhandled rejections");
}

function makeClient(url: string, options: ClientOptions = {}) {
  const retries: RetryEvent[] = [];
  const client = new Client(url, {
    timeout: TIMEOUT,
    retries: RETRIES,
    random: () => 0.5,
    sleep: () => Promise.resolve(),
    onRetry: (event) => retries.push(event),
    ...options,
  });
  return { client, retries };
}

type Operation = [name: string, call: (client: Client) => Promise<unknown>];

const OPERATIONS: Operation[] = [
  ["get", (client) => client.get(KEY)],
  ["set", (client) => client.set(KEY, "v1")],
  ["delete", (client) => client.delete(KEY)],
  ["list", (client) => client.list("app/")],
];

/** Returns the pattern that error messages use to name an operation's target. */
function target(name: string): RegExp {
  return name === "list" ? /GET \/kv\/\?prefix=app%2F/ : /"app\/config"/;
}

async function timed<T>(call: () => Promise<T>): Promise<[unknown, number]> {
  const started = performance.now();
  try {
    await call();
    return [undefined, performance.now() - started];
  } catch (error) {
    return [error, performance.now() - started];
  }
}

Deno.test("refused connection", async (t) => {
  for (const [name, call] of OPERATIONS) {
    await t.step(name, async () => {
      const port = closedPort();
      const { client, retries } = makeClient(`http://127.0.0.1:${port}`);
      const [error, elapsed] = await timed(() => call(client));
      assert.ok(error instanceof ConnectionError, String(error));
      assert.match(error.message, target(name));
      assert.match(error.message, /could not reach the server/);
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.equal(retries.length, RETRIES);
      assert.ok(elapsed < TIMEOUT + MARGIN, `took ${elapsed} ms`);
      await client.close();
    });
  }
  assertNoUnhandledRejections();
});

/** Byte-level faults, each served to every attempt of the call. */
const BODY_FAULTS: [
  name: string,
  behavior: () => Behavior,
  expected: typeof ConnectionError | typeof TimeoutError,
][] = [
  ["close before headers", closeBeforeHeaders, ConnectionError],
  ["close mid-body", () => closeMidBody("0123456789", 4), ConnectionError],
  ["stall after headers", () => stallAfterHeaders("0123456789"), TimeoutError],
  [
    "stall mid-body",
    () => stallAfterHeaders("0123456789", 3),
    TimeoutError,
  ],
  // 40 bytes at 25 ms each take a second, five times the timeout.
  ["drip one byte at a time", () => dripBody("x".repeat(40), 25), TimeoutError],
];

Deno.test("TCP faults on every attempt", async (t) => {
  for (const [faultName, behavior, expected] of BODY_FAULTS) {
    for (const [name, call] of OPERATIONS) {
      await t.step(`${faultName}: ${name}`, async () => {
        await using server = new TcpServer(behavior());
        const { client, retries } = makeClient(server.url);
        const [error, elapsed] = await timed(() => call(client));
        assert.ok(error instanceof expected, String(error));
        assert.match((error as StashError).message, target(name));
        if (expected === TimeoutError) {
          assert.match((error as StashError).message, /timed out after 200 ms/);
        }
        assert.equal(server.accepted, RETRIES + 1);
        assert.equal(server.requests.length, RETRIES + 1);
        assert.equal(retries.length, RETRIES);
        const budget = expected === TimeoutError
          ? (RETRIES + 1) * TIMEOUT + MARGIN
          : TIMEOUT + MARGIN;
        assert.ok(elapsed < budget, `took ${elapsed} ms, budget ${budget}`);
        if (expected === TimeoutError) {
          // Each attempt waited for its own timeout.
          const floor = (RETRIES + 1) * TIMEOUT - 30;
          assert.ok(elapsed >= floor, `took ${elapsed} ms, expected ${floor}`);
        }
        await client.close();
      });
    }
  }
  assertNoUnhandledRejections();
});

Deno.test("TCP fault then recovery", async (t) => {
  await t.step("get after a cut body reads the value", async () => {
    await using server = new TcpServer([
      closeMidBody("0123456789", 4),
      respond(200, { "Content-Type": "text/plain" }, "v1"),
    ]);
    const { client, retries } = makeClient(server.url);
    assert.equal(await client.get(KEY), "v1");
    assert.equal(server.accepted, 2);
    assert.equal(retries[0]?.error instanceof ConnectionError, true);
    await client.close();
  });

  await t.step("get after a drip timeout reads the value", async () => {
    await using server = new TcpServer([
      dripBody("x".repeat(40), 25),
      respond(200, { "Content-Type": "text/plain" }, "v1"),
    ]);
    const { client, retries } = makeClient(server.url);
    const [error, elapsed] = await timed(() => client.get(KEY));
    assert.equal(error, undefined);
    assert.ok(elapsed < TIMEOUT + MARGIN, `took ${elapsed} ms`);
    assert.ok(retries[0]?.error instanceof TimeoutError);
    await client.close();
  });

  await t.step("retries zero sends once", async () => {
    await using server = new TcpServer(closeBeforeHeaders());
    const { client } = makeClient(server.url, { retries: 0 });
    await assert.rejects(client.get(KEY), ConnectionError);
    assert.equal(server.accepted, 1);
    await client.close();
  });
  assertNoUnhandledRejections();
});

/**
 * Forwards the request to the in-process server, so the write is applied,
 * then closes the connection without sending its response when `drop` is
 * set.
 */
function forwardTo(stash: StashServer, drop: boolean): Behavior {
  return async (connection) => {
    const { method, path, headers, body } = connection.request;
    const response = await stash.handle(
      new Request(`http://127.0.0.1${path}`, {
        method,
        headers,
        ...(body.length > 0 || method === "PUT"
          ? { body: body as Uint8Array<ArrayBuffer> }
          : {}),
      }),
    );
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (drop) return;
    const fields: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      if (name !== "content-length" && name !== "connection") {
        fields[name] = value;
      }
    });
    fields["Content-Length"] = String(bytes.length);
    await connection.write(head(response.status, fields));
    await connection.write(bytes);
  };
}

Deno.test("write whose response is lost", async (t) => {
  await t.step("PUT of a new key is retried once", async () => {
    const stash = createStashServer();
    await using server = new TcpServer([
      forwardTo(stash, true),
      forwardTo(stash, false),
    ]);
    const { client, retries } = makeClient(server.url);
    const result = await client.set(KEY, "v1");
    assert.equal(result.key, KEY);
    // The first attempt created the key (201, lost) and the retry replaced
    // it (200), so the client cannot tell whether this call created it.
    assert.equal(result.created, undefined);
    assert.equal(new TextDecoder().decode(stash.getRaw(KEY)), "v1");
    assert.deepEqual(stash.requests.map((r) => r.method), ["PUT", "PUT"]);
    assert.equal(retries.length, 1);
    assert.ok(retries[0]?.error instanceof ConnectionError);
    await client.close();
    await stash.close();
  });

  await t.step("PUT overwrite keeps the final value", async () => {
    const stash = createStashServer();
    stash.put(KEY, "old");
    await using server = new TcpServer([
      forwardTo(stash, true),
      forwardTo(stash, false),
    ]);
    const { client } = makeClient(server.url);
    const result = await client.set(KEY, "new");
    assert.equal(result.created, undefined);
    assert.equal(new TextDecoder().decode(stash.getRaw(KEY)), "new");
    assert.equal(stash.requests.length, 2);
    await client.close();
    await stash.close();
  });

  await t.step("DELETE retried after a lost 204 succeeds", async () => {
    const stash = createStashServer();
    stash.put(KEY, "v1");
    await using server = new TcpServer([
      forwardTo(stash, true),
      forwardTo(stash, false),
    ]);
    const { client } = makeClient(server.url);
    await client.delete(KEY);
    assert.equal(stash.getRaw(KEY), undefined);
    assert.deepEqual(stash.requests.map((r) => r.method), [
      "DELETE",
      "DELETE",
    ]);
    await client.close();
    await stash.close();
  });

  await t.step("DELETE of a missing key is still NotFoundError", async () => {
    const stash = createStashServer();
    await using server = new TcpServer(forwardTo(stash, false));
    const { client } = makeClient(server.url);
    const error = await client.delete(KEY).catch((e) => e);
    assert.ok(error instanceof NotFoundError);
    assert.match(error.message, /"app\/config" not found/);
    assert.equal(stash.requests.length, 1);
    await client.close();
    await stash.close();
  });
  assertNoUnhandledRejections();
});

const EVENTS = [1, 2, 3, 4, 5].map((second) =>
  changeData(KEY, "update", second)
);

/** Collects `count` events, then closes the subscription. */
async function collect(
  subscription: Subscription,
  count: number,
): Promise<ChangeEvent[]> {
  const events: ChangeEvent[] = [];
  for await (const event of subscription) {
    events.push(event);
    if (events.length === count) break;
  }
  return events;
}

function subscribeTo(url: string, options: ClientOptions = {}) {
  const states: [SubscriptionState, StateChangeInfo][] = [];
  const { client } = makeClient(url, {
    reconnect: { initialDelay: 1, maxDelay: 1 },
    ...options,
  });
  const subscription = client.subscribe(KEY, {
    onStateChange: (state, info) => states.push([state, info]),
  });
  return { client, subscription, states };
}

function expectedEvents(count: number): ChangeEvent[] {
  return EVENTS.slice(0, count).map((data) => {
    const parsed = JSON.parse(data);
    return { ...parsed, timestamp: new Date(parsed.timestamp) };
  });
}

/** Holds an event stream open with no events until the client leaves. */
function quietStream(): Behavior {
  return async (connection) => {
    await connection.write(head(200, { "Content-Type": "text/event-stream" }));
    await connection.untilClientCloses();
  };
}

Deno.test("subscription stream faults", async (t) => {
  await t.step("server closes every two events", async () => {
    await using server = new TcpServer([
      eventStream({ events: EVENTS.slice(0, 2) }),
      eventStream({ events: EVENTS.slice(2, 4) }),
      eventStream({ events: EVENTS.slice(4, 5) }),
      quietStream(),
    ]);
    const { client, subscription, states } = subscribeTo(server.url);
    const events = await collect(subscription, 5);
    assert.deepEqual(
      normalize(events),
      normalize(expectedEvents(5)),
    );
    assert.ok(server.accepted >= 3);
    assert.equal(subscription.invalidEvents, 0);
    const reconnecting = states.filter(([state]) => state === "reconnecting");
    assert.ok(reconnecting.length >= 2);
    assert.ok(reconnecting[0]?.[1].error instanceof ConnectionError);
    assert.match(String(reconnecting[0]?.[1].error), /ended by the server/);
    assert.equal(subscription.state, "closed");
    await client.close();
  });

  for (const chunked of [false, true]) {
    const framing = chunked ? "chunked" : "close-delimited";
    await t.step(`cut mid-line, ${framing}`, async () => {
      await using server = new TcpServer([
        eventStream({
          events: EVENTS.slice(0, 1),
          tail: `event: change\ndata: {"key":"app/con`,
          chunked,
        }),
        eventStream({
          events: EVENTS.slice(1, 2),
          tail: "event: change\nda",
          chunked,
        }),
        eventStream({ events: EVENTS.slice(2, 3), chunked }),
        quietStream(),
      ]);
      const { client, subscription } = subscribeTo(server.url);
      const events = await collect(subscription, 3);
      assert.deepEqual(normalize(events), normalize(expectedEvents(3)));
      assert.equal(subscription.invalidEvents, 0);
      for (const event of events) {
        assert.equal(event.key, KEY);
        assert.equal(event.action, "update");
      }
      await client.close();
    });
  }

  await t.step("refused connection reconnects", async () => {
    const port = closedPort();
    const { client, subscription, states } = subscribeTo(
      `http://127.0.0.1:${port}`,
    );
    await until(() =>
      states.filter(([state]) => state === "reconnecting").length >= 3
    );
    await subscription.close();
    const [, info] = states.find(([state]) => state === "reconnecting") ?? [];
    assert.ok(info?.error instanceof ConnectionError);
    assert.match(String(info?.error), /subscribe\/app%2Fconfig/);
    assert.equal(subscription.state, "closed");
    await client.close();
  });

  await t.step("close before headers reconnects", async () => {
    await using server = new TcpServer([
      closeBeforeHeaders(),
      closeBeforeHeaders(),
      eventStream({ events: EVENTS.slice(0, 1) }),
      quietStream(),
    ]);
    const { client, subscription } = subscribeTo(server.url);
    const events = await collect(subscription, 1);
    assert.deepEqual(normalize(events), normalize(expectedEvents(1)));
    assert.ok(server.accepted >= 3);
    await client.close();
  });

  await t.step("429 waits at least a second", async () => {
    const delays: number[] = [];
    await using server = new TcpServer([
      respond(429, {
        "Content-Type": "text/plain; charset=utf-8",
        "Ratelimit-Limit": "100",
        "Ratelimit-Remaining": "0",
        "Ratelimit-Reset": "1",
      }, "You have reached maximum request limit."),
      eventStream({ events: EVENTS.slice(0, 1) }),
      quietStream(),
    ]);
    const { client, subscription, states } = subscribeTo(server.url, {
      sleep: (ms) => {
        delays.push(ms);
        return Promise.resolve();
      },
    });
    const events = await collect(subscription, 1);
    assert.equal(events.length, 1);
    const [, info] = states.find(([state]) => state === "reconnecting") ?? [];
    assert.ok(info?.error instanceof RateLimitError);
    assert.equal(info.error.remaining, 0);
    assert.ok((info.delay ?? 0) >= 1000, `delay ${info.delay}`);
    assert.ok(delays.some((ms) => ms >= 1000));
    await client.close();
  });

  for (
    const [name, behavior] of [
      ["503 empty", respond(503, {})],
      [
        "502 HTML",
        respond(
          502,
          { "Content-Type": "text/html" },
          "<html><head><title>502 Bad Gateway</title></head></html>",
        ),
      ],
    ] as const
  ) {
    await t.step(`${name} reconnects`, async () => {
      await using server = new TcpServer([
        behavior,
        eventStream({ events: EVENTS.slice(0, 1) }),
        quietStream(),
      ]);
      const { client, subscription, states } = subscribeTo(server.url);
      const events = await collect(subscription, 1);
      assert.equal(events.length, 1);
      const [, info] = states.find(([state]) => state === "reconnecting") ??
        [];
      assert.ok(info?.error instanceof ResponseError);
      await client.close();
    });
  }

  await t.step("stalled stream reconnects after idleTimeout", async () => {
    await using server = new TcpServer([
      quietStream(),
      eventStream({ events: EVENTS.slice(0, 1) }),
      quietStream(),
    ]);
    const { client } = makeClient(server.url, {
      reconnect: { initialDelay: 1, maxDelay: 1 },
      // The idle watchdog waits with this sleep, so it must be real here.
      sleep: (ms, signal) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(resolve, ms);
          signal?.addEventListener("abort", () => {
            clearTimeout(timer);
            reject(signal.reason);
          }, { once: true });
        }),
    });
    const states: StateChangeInfo[] = [];
    const subscription = client.subscribe(KEY, {
      idleTimeout: 150,
      onStateChange: (state, info) => {
        if (state === "reconnecting") states.push(info);
      },
    });
    const [error, elapsed] = await timed(() => collect(subscription, 1));
    assert.equal(error, undefined);
    assert.ok(elapsed < 150 + MARGIN, `took ${elapsed} ms`);
    assert.ok(states[0]?.error instanceof TimeoutError);
    await client.close();
  });
  assertNoUnhandledRejections();
});

/** Compares events by their fields, timestamps as numbers. */
function normalize(events: ChangeEvent[]): unknown[] {
  return events.map((event) => ({
    key: event.key,
    action: event.action,
    timestamp: new Date(event.timestamp).getTime(),
  }));
}

/** Polls `condition` every few milliseconds for at most two seconds. */
async function until(condition: () => boolean): Promise<void> {
  for (let turn = 0; turn < 400; turn++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error("condition not met within two seconds");
}
