import assert from "node:assert/strict";
import {
  ConnectionError,
  ForbiddenError,
  NotFoundError,
  RateLimitError,
  ResponseError,
  TimeoutError,
  UnauthorizedError,
  UnsupportedError,
} from "../src/errors.ts";
import { EventStreamError } from "../src/sse/parser.ts";
import {
  type ChangeEvent,
  type StateChangeInfo,
  Subscription,
  type SubscriptionInit,
  SubscriptionOverflowError,
  type SubscriptionState,
} from "../src/sse/subscription.ts";
import { ControlledStream } from "./_streams.ts";

const encoder = new TextEncoder();
const TIMESTAMP = "2026-01-03T10:30:00Z";

interface SleepCall {
  ms: number;
  signal: AbortSignal;
  done: boolean;
  resolve: () => void;
}

/** A clock and sleep: `auto` sleeps advance the clock and return at once. */
class FakeClock {
  now = 0;
  readonly calls: SleepCall[] = [];
  constructor(readonly auto = true) {}

  sleep = (ms: number, signal: AbortSignal): Promise<void> => {
    return new Promise((resolve) => {
      const call: SleepCall = {
        ms,
        signal,
        done: false,
        resolve: () => {
          if (call.done) return;
          call.done = true;
          signal.removeEventListener("abort", call.resolve);
          resolve();
        },
      };
      this.calls.push(call);
      if (signal.aborted) {
        call.resolve();
        return;
      }
      signal.addEventListener("abort", call.resolve, { once: true });
      if (this.auto) {
        this.now += ms;
        call.resolve();
      }
    });
  };

  pending(): SleepCall[] {
    return this.calls.filter((call) => !call.done);
  }

  delays(): number[] {
    return this.calls.map((call) => call.ms);
  }
}

type Reply =
  | Response
  | Error
  | ((signal: AbortSignal) => Promise<Response>);

/** A scripted `connect`: one reply per request, then requests hang. */
class FakeServer {
  readonly requests: {
    signal: AbortSignal;
    lastEventId: string | undefined;
  }[] = [];
  readonly #replies: Reply[];

  constructor(replies: Reply[]) {
    this.#replies = replies;
  }

  connect = (
    signal: AbortSignal,
    lastEventId: string | undefined,
  ): Promise<Response> => {
    this.requests.push({ signal, lastEventId });
    const reply = this.#replies.shift();
    if (reply === undefined) return hang(signal);
    if (reply instanceof Error) return Promise.reject(reply);
    if (reply instanceof Response) return Promise.resolve(reply);
    return reply(signal);
  };
}

/** Returns a request that waits like fetch for deferred headers. */
function hang(signal: AbortSignal): Promise<Response> {
  return new Promise((_resolve, reject) => {
    signal.addEventListener("abort", () => reject(signal.reason), {
      once: true,
    });
  });
}

function change(key: string, action = "update"): string {
  const data = JSON.stringify({ key, action, timestamp: TIMESTAMP });
  return `event: change\ndata: ${data}\n\n`;
}

function status(code: number, body = "", headers: HeadersInit = {}): Response {
  return new Response(body, { status: code, headers });
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 10_000; turn++) {
    if (predicate()) return;
    await Promise.resolve();
  }
  throw new Error(`Gave up waiting for ${what}`);
}

function start(
  server: FakeServer,
  overrides: Partial<SubscriptionInit> = {},
  clock: FakeClock = new FakeClock(),
): {
  sub: Subscription;
  states: [SubscriptionState, StateChangeInfo][];
  clock: FakeClock;
  events: AsyncIterator<ChangeEvent, undefined>;
} {
  const states: [SubscriptionState, StateChangeInfo][] = [];
  const sub = new Subscription({
    connect: server.connect,
    target: { kind: "key", key: "app/config" },
    path: "/kv/subscribe/app%2Fconfig",
    sleep: clock.sleep,
    random: () => 0.5,
    now: () => clock.now,
    onStateChange: (state, info) => states.push([state, info]),
    ...overrides,
  });
  return { sub, states, clock, events: sub[Symbol.asyncIterator]() };
}

async function nextKey(
  events: AsyncIterator<ChangeEvent, undefined>,
): Promise<string | undefined> {
  const result = await events.next();
  return result.done ? undefined : result.value.key;
}

function stateNames(states: [SubscriptionState, StateChangeInfo][]): string[] {
  return states.map(([state]) => state);
}

Deno.test("Subscription yields change events", async (t) => {
  await t.step("in order across chunk splits", async () => {
    const stream = new ControlledStream();
    const { sub, events } = start(new FakeServer([stream.response()]));
    const bytes = encoder.encode(
      change("app/config", "create") + change("app/config", "update") +
        change("app/config", "delete"),
    );
    for (let offset = 0; offset < bytes.length; offset += 7) {
      stream.send(bytes.slice(offset, offset + 7));
    }
    const received: ChangeEvent[] = [];
    for (let i = 0; i < 3; i++) {
      const result = await events.next();
      assert.equal(result.done, false);
      if (!result.done) received.push(result.value);
    }
    assert.deepEqual(received.map((event) => event.action), [
      "create",
      "update",
      "delete",
    ]);
    assert.equal(received[0]?.key, "app/config");
    assert.ok(received[0]?.timestamp instanceof Date);
    assert.equal(
      received[0]?.timestamp.toISOString(),
      "2026-01-03T10:30:00.000Z",
    );
    await sub.close();
    assert.equal(stream.cancelled, true);
  });

  await t.step("ignores other event types", async () => {
    const stream = new ControlledStream();
    const { sub, events } = start(new FakeServer([stream.response()]));
    const data = JSON.stringify({
      key: "app/config",
      action: "update",
      timestamp: TIMESTAMP,
    });
    stream.send(`data: ${data}\n\nevent: other\ndata: ${data}\n\n`);
    stream.send(": comment\n\n" + change("app/config", "delete"));
    const result = await events.next();
    assert.equal(result.done ? undefined : result.value.action, "delete");
    assert.equal(sub.invalidEvents, 0);
    await sub.close();
  });

  await t.step("skips and reports invalid change events", async () => {
    const stream = new ControlledStream();
    const invalid: TypeError[] = [];
    const { sub, events } = start(new FakeServer([stream.response()]), {
      onInvalidEvent: (error) => invalid.push(error),
    });
    stream.send("event: change\ndata: not json\n\n");
    stream.send(
      'event: change\ndata: {"key":"app/config","action":"rename",' +
        `"timestamp":"${TIMESTAMP}"}\n\n`,
    );
    stream.send(
      'event: change\ndata: {"key":"app/config","action":"update",' +
        '"timestamp":"2026-02-30T10:30:00Z"}\n\n',
    );
    stream.send(
      'event: change\ndata: {"action":"update",' +
        `"timestamp":"${TIMESTAMP}"}\n\n`,
    );
    stream.send(change("app/config"));
    assert.equal(await nextKey(events), "app/config");
    assert.equal(sub.invalidEvents, 4);
    assert.equal(invalid.length, 4);
    assert.ok(invalid.every((error) => error instanceof TypeError));
    assert.match(invalid[1]?.message ?? "", /action/);
    assert.match(invalid[2]?.message ?? "", /timestamp/);
    await sub.close();
  });
});

Deno.test("Subscription filters by target", async (t) => {
  const keys = ["app", "app/config", "app/ping", "application/x", "app/a/b"];

  /** Sends updates of every key, then a delete of `last`, and collects keys. */
  async function received(
    target: SubscriptionInit["target"],
    last: string,
  ): Promise<string[]> {
    const stream = new ControlledStream();
    const { sub, events } = start(new FakeServer([stream.response()]), {
      target,
    });
    for (const key of keys) stream.send(change(key));
    stream.send(change(last, "delete"));
    const seen: string[] = [];
    for (let i = 0; i <= keys.length; i++) {
      const result = await events.next();
      if (result.done || result.value.action === "delete") break;
      seen.push(result.value.key);
    }
    await sub.close();
    return seen;
  }

  await t.step("exact key", async () => {
    const target = { kind: "key", key: "app/config" } as const;
    assert.deepEqual(await received(target, "app/config"), ["app/config"]);
  });

  await t.step("key whose last segment is ping", async () => {
    const target = { kind: "key", key: "app/ping" } as const;
    assert.deepEqual(await received(target, "app/ping"), ["app/ping"]);
  });

  await t.step("prefix is segment-aligned", async () => {
    assert.deepEqual(
      await received({ kind: "prefix", prefix: "app" }, "app/end"),
      [
        "app/config",
        "app/ping",
        "app/a/b",
      ],
    );
  });

  await t.step("prefix with trailing slash", async () => {
    assert.deepEqual(
      await received({ kind: "prefix", prefix: "app/a/" }, "app/a/end"),
      [
        "app/a/b",
      ],
    );
  });

  await t.step("all keys", async () => {
    assert.deepEqual(await received({ kind: "all" }, "end"), keys);
  });
});

Deno.test("Subscription reconnects with backoff", async (t) => {
  await t.step("after end, network error, 503 and 429", async () => {
    const ended = new ControlledStream();
    ended.end();
    const server = new FakeServer([
      ended.response(),
      new TypeError("connection refused"),
      status(503, "busy"),
      status(429, "slow down", { "retry-after": "5" }),
    ]);
    const { sub, states, clock } = start(server);
    await until(() => server.requests.length === 5, "fifth request");
    // random() is 0.5: half of the caps 1, 2, 4 and 8 s, but 429 waits 5 s.
    assert.deepEqual(clock.delays(), [500, 1000, 2000, 5000]);
    assert.equal(sub.reconnects, 4);
    assert.equal(sub.state, "connecting");
    const reasons = states
      .filter(([state]) => state === "reconnecting")
      .map(([, info]) => info.error);
    assert.ok(reasons[0] instanceof ConnectionError);
    assert.match(reasons[0].message, /ended by the server/);
    assert.ok(reasons[1] instanceof ConnectionError);
    assert.ok(reasons[1].cause instanceof TypeError);
    assert.ok(reasons[2] instanceof ResponseError);
    assert.equal(reasons[2].status, 503);
    assert.ok(reasons[3] instanceof RateLimitError);
    await sub.close();
  });

  await t.step("delays stay within the jittered cap", async () => {
    const failures = Array.from({ length: 8 }, () => new TypeError("reset"));
    for (const random of [0, 0.999999]) {
      const server = new FakeServer([...failures]);
      const { sub, clock } = start(server, { random: () => random });
      await until(() => server.requests.length === 9, "ninth request");
      const caps = [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
      assert.deepEqual(
        clock.delays(),
        caps.map((cap) => Math.floor(random * cap)),
      );
      for (const [i, delay] of clock.delays().entries()) {
        assert.ok(delay >= 0, `delay ${i} is negative`);
        assert.ok(delay < (caps[i] ?? 0), `delay ${i} reaches its cap`);
      }
      await sub.close();
    }
  });

  await t.step("429 without Retry-After waits one second", async () => {
    const server = new FakeServer([status(429)]);
    const { sub, clock } = start(server, { random: () => 0 });
    await until(() => server.requests.length === 2, "second request");
    assert.deepEqual(clock.delays(), [1000]);
    await sub.close();
  });

  await t.step("resets after a healthy period", async () => {
    const healthy = new ControlledStream();
    const server = new FakeServer([
      new TypeError("refused"),
      new TypeError("refused"),
      healthy.response(),
      new TypeError("refused"),
    ]);
    const { sub, clock } = start(server);
    await until(() => sub.state === "open", "open stream");
    clock.now += 60_000;
    healthy.end();
    await until(() => server.requests.length === 5, "fifth request");
    assert.deepEqual(clock.delays(), [500, 1000, 500, 1000]);
    await sub.close();
  });

  await t.step("short connection does not reset", async () => {
    const short = new ControlledStream();
    short.end();
    const server = new FakeServer([new TypeError("refused"), short.response()]);
    const { sub, clock } = start(server);
    await until(() => server.requests.length === 3, "third request");
    assert.deepEqual(clock.delays(), [500, 1000]);
    await sub.close();
  });

  await t.step("retry field sets the base delay", async () => {
    const stream = new ControlledStream();
    stream.send("retry: 4000\n\n");
    stream.end();
    const server = new FakeServer([stream.response(), new TypeError("x")]);
    const { sub, clock } = start(server);
    await until(() => server.requests.length === 3, "third request");
    assert.deepEqual(clock.delays(), [2000, 4000]);
    await sub.close();
  });

  await t.step("retry field is capped at maxDelay", async () => {
    const stream = new ControlledStream();
    stream.send("retry: 999999999\n\n");
    stream.end();
    const server = new FakeServer([stream.response(), new TypeError("x")]);
    const { sub, clock } = start(server);
    await until(() => server.requests.length === 3, "third request");
    for (const delay of clock.delays()) {
      assert.ok(delay <= 30_000, `delay ${delay} exceeds maxDelay`);
    }
    await sub.close();
  });

  await t.step("Last-Event-ID sent back", async () => {
    const first = new ControlledStream();
    first.send("id: 5\n" + change("app/config"));
    first.end();
    const second = new ControlledStream();
    second.send(change("app/config"));
    second.end();
    const server = new FakeServer([first.response(), second.response()]);
    const { sub } = start(server);
    await until(() => server.requests.length === 3, "third request");
    assert.deepEqual(server.requests.map((request) => request.lastEventId), [
      undefined,
      "5",
      "5",
    ]);
    assert.equal(sub.lastEventId, "5");
    await sub.close();
  });
});

Deno.test("Subscription state hook", async (t) => {
  await t.step("connecting, open, reconnecting, closed", async () => {
    const first = new ControlledStream();
    const second = new ControlledStream();
    const server = new FakeServer([first.response(), second.response()]);
    const { sub, states } = start(server);
    assert.equal(sub.state, "connecting");
    await until(() => sub.state === "open", "first open");
    first.end();
    await until(() => server.requests.length === 2, "second request");
    await until(() => sub.state === "open", "second open");
    await sub.close();
    assert.deepEqual(stateNames(states), [
      "connecting",
      "open",
      "reconnecting",
      "connecting",
      "open",
      "closed",
    ]);
    assert.deepEqual(states.map(([, info]) => info.reconnects), [
      0,
      0,
      0,
      1,
      1,
      1,
    ]);
    assert.equal(states[2]?.[1].delay, 500);
    assert.equal(states[5]?.[1].error, undefined);
    assert.equal(sub.state, "closed");
  });

  await t.step("a throwing hook closes with its error", async () => {
    const failure = new Error("hook failed");
    const server = new FakeServer([new ControlledStream().response()]);
    const { sub, events } = start(server, {
      onStateChange: (state) => {
        if (state === "open") throw failure;
      },
    });
    await assert.rejects(events.next(), (error) => error === failure);
    assert.equal(sub.state, "closed");
    await sub.close();
  });
});

Deno.test("Subscription permanent failures", async (t) => {
  const cases: {
    name: string;
    response: () => Response;
    check: (error: unknown) => boolean;
  }[] = [
    {
      name: "400 ResponseError",
      response: () => status(400, "key path required"),
      check: (error) =>
        error instanceof ResponseError && error.status === 400 &&
        error.serverMessage === "key path required",
    },
    {
      name: "401 UnauthorizedError",
      response: () => status(401, "unauthorized"),
      check: (error) => error instanceof UnauthorizedError,
    },
    {
      name: "403 ForbiddenError",
      response: () => status(403, "access denied"),
      check: (error) =>
        error instanceof ForbiddenError && error.key === "app/config",
    },
    {
      name: "404 JSON from v0.13.0 UnsupportedError",
      response: () =>
        status(404, '{"error":"key not found"}', {
          "content-type": "application/json",
        }),
      check: (error) =>
        error instanceof UnsupportedError &&
        error.cause instanceof NotFoundError &&
        /not supported by this server/.test(error.message) &&
        /key not found/.test(error.message),
    },
    {
      name: "200 stored value UnsupportedError",
      response: () =>
        status(200, '{"a":1}', { "content-type": "application/json" }),
      check: (error) =>
        error instanceof UnsupportedError &&
        /application\/json instead of text\/event-stream/.test(error.message),
    },
    {
      name: "200 pong UnsupportedError",
      response: () => status(200, "pong", { "content-type": "text/plain" }),
      check: (error) =>
        error instanceof UnsupportedError && /pong/.test(error.message),
    },
  ];

  for (const { name, response, check } of cases) {
    await t.step(name, async () => {
      const server = new FakeServer([response()]);
      const { sub, states, clock, events } = start(server, {
        maxEventSize: 64,
      });
      await assert.rejects(events.next(), check);
      assert.equal(server.requests.length, 1);
      assert.deepEqual(clock.calls, []);
      assert.equal(sub.state, "closed");
      assert.ok(states.at(-1)?.[1].error instanceof Error);
      assert.deepEqual(await events.next(), { done: true, value: undefined });
      await sub.close();
    });
  }

  await t.step("events before an over-long line are delivered", async () => {
    const stream = new ControlledStream();
    stream.send(change("app/config") + "data: " + "x".repeat(200));
    const server = new FakeServer([stream.response()]);
    const { sub, events } = start(server, { maxEventSize: 128 });
    assert.equal(await nextKey(events), "app/config");
    await until(() => server.requests.length === 2, "reconnect");
    assert.equal(stream.cancelled, true);
    await sub.close();
  });
});

Deno.test("Subscription close", async (t) => {
  await t.step("while connecting", async () => {
    const server = new FakeServer([() => new Promise<Response>(() => {})]);
    const { sub, events } = start(server);
    await until(() => server.requests.length === 1, "request");
    const next = events.next();
    await sub.close();
    assert.deepEqual(await next, { done: true, value: undefined });
    assert.equal(server.requests[0]?.signal.aborted, true);
  });

  await t.step("late response is cancelled", async () => {
    const stream = new ControlledStream();
    let resolveReply: (response: Response) => void = () => {};
    const reply = new Promise<Response>((resolve) => {
      resolveReply = resolve;
    });
    const server = new FakeServer([() => reply]);
    const { sub } = start(server);
    await until(() => server.requests.length === 1, "request");
    await sub.close();
    resolveReply(stream.response());
    await until(() => stream.cancelled, "cancelled body");
  });

  await t.step("while reading", async () => {
    const stream = new ControlledStream();
    const server = new FakeServer([stream.response()]);
    const { sub, events, states } = start(server);
    await until(() => sub.state === "open", "open");
    const next = events.next();
    await sub.close();
    assert.deepEqual(await next, { done: true, value: undefined });
    assert.equal(stream.cancelled, true);
    assert.equal(server.requests[0]?.signal.aborted, true);
    assert.equal(stateNames(states).at(-1), "closed");
  });

  await t.step("while sleeping", async () => {
    const clock = new FakeClock(false);
    const server = new FakeServer([new TypeError("refused")]);
    const { sub, events } = start(server, {}, clock);
    await until(() => clock.pending().length === 1, "backoff sleep");
    const sleepCall = clock.pending()[0];
    await sub.close();
    assert.equal(sleepCall?.signal.aborted, true);
    assert.equal(sleepCall?.done, true);
    assert.deepEqual(await events.next(), { done: true, value: undefined });
    assert.equal(server.requests.length, 1);
  });

  await t.step("discards queued events", async () => {
    const stream = new ControlledStream();
    stream.send(change("app/config"));
    const { sub, events } = start(new FakeServer([stream.response()]));
    await until(() => sub.state === "open", "open");
    await Promise.resolve();
    await sub.close();
    assert.deepEqual(await events.next(), { done: true, value: undefined });
  });

  await t.step("caller signal abort", async () => {
    const controller = new AbortController();
    const stream = new ControlledStream();
    const sub = new Subscription({
      connect: new FakeServer([stream.response()]).connect,
      target: { kind: "key", key: "app/config" },
      path: "/kv/subscribe/app%2Fconfig",
      signal: controller.signal,
    });
    const seen: string[] = [];
    stream.send(change("app/config"));
    for await (const event of sub) {
      seen.push(event.key);
      controller.abort();
    }
    assert.deepEqual(seen, ["app/config"]);
    assert.equal(sub.state, "closed");
    assert.equal(stream.cancelled, true);
  });

  await t.step("signal aborted before start", async () => {
    const server = new FakeServer([]);
    const { sub, events } = start(server, {
      signal: AbortSignal.abort(),
    });
    assert.deepEqual(await events.next(), { done: true, value: undefined });
    assert.equal(server.requests.length, 0);
    await sub.close();
  });

  await t.step("break closes", async () => {
    const stream = new ControlledStream();
    const server = new FakeServer([stream.response()]);
    const sub = new Subscription({
      connect: server.connect,
      target: { kind: "all" },
      path: "/kv/subscribe/*",
    });
    stream.send(change("a"));
    for await (const _event of sub) break;
    assert.equal(sub.state, "closed");
    assert.equal(stream.cancelled, true);
  });

  await t.step("await using closes", async () => {
    const stream = new ControlledStream();
    let state: SubscriptionState | undefined;
    {
      await using sub = start(new FakeServer([stream.response()])).sub;
      await until(() => sub.state === "open", "open");
      state = sub.state;
    }
    assert.equal(state, "open");
    assert.equal(stream.cancelled, true);
  });

  await t.step("second iterator throws TypeError", async () => {
    const { sub } = start(new FakeServer([]));
    assert.throws(() => sub[Symbol.asyncIterator](), TypeError);
    await sub.close();
  });
});

Deno.test("Subscription slow consumer", async (t) => {
  await t.step("drop-oldest drops and reports", async () => {
    const stream = new ControlledStream();
    const overflows: number[] = [];
    const { sub, events } = start(new FakeServer([stream.response()]), {
      target: { kind: "all" },
      queueSize: 3,
      onOverflow: (info) => {
        assert.equal(info.queueSize, 3);
        overflows.push(info.dropped);
      },
    });
    for (const key of ["k1", "k2", "k3", "k4", "k5"]) stream.send(change(key));
    await until(() => sub.dropped === 2, "two dropped events");
    assert.deepEqual(overflows, [1]);
    assert.equal(await nextKey(events), "k3");
    stream.send(change("k6") + change("k7"));
    await until(() => sub.dropped === 3, "third dropped event");
    assert.deepEqual(overflows, [1, 3]);
    assert.equal(await nextKey(events), "k5");
    assert.equal(await nextKey(events), "k6");
    assert.equal(await nextKey(events), "k7");
    assert.equal(sub.state, "open");
    await sub.close();
  });

  await t.step("error policy ends the iteration", async () => {
    const stream = new ControlledStream();
    const server = new FakeServer([stream.response()]);
    const { sub, events, clock } = start(server, {
      target: { kind: "all" },
      queueSize: 2,
      overflow: "error",
    });
    stream.send(change("k1") + change("k2") + change("k3"));
    await until(() => sub.state === "closed", "closed subscription");
    assert.equal(await nextKey(events), "k1");
    assert.equal(await nextKey(events), "k2");
    await assert.rejects(events.next(), (error) => {
      assert.ok(error instanceof SubscriptionOverflowError);
      assert.equal(error.dropped, 1);
      assert.equal(error.queueSize, 2);
      return true;
    });
    assert.equal(sub.dropped, 1);
    assert.equal(stream.cancelled, true);
    assert.equal(server.requests.length, 1);
    assert.deepEqual(clock.calls, []);
    await sub.close();
  });
});

Deno.test("Subscription idle timeout", async (t) => {
  await t.step("reconnects after a quiet stream", async () => {
    const clock = new FakeClock(false);
    const stream = new ControlledStream();
    const server = new FakeServer([stream.response()]);
    const { sub, states } = start(server, { idleTimeout: 10_000 }, clock);
    await until(() => sub.state === "open", "open");
    assert.deepEqual(clock.pending().map((call) => call.ms), [10_000]);
    clock.now = 4_000;
    stream.send(": some bytes\n");
    await until(() => stream.stream.locked, "reader");
    await Promise.resolve();
    clock.now = 10_000;
    clock.pending()[0]?.resolve();
    await until(() => clock.pending().length === 1, "second idle sleep");
    assert.equal(clock.pending()[0]?.ms, 4_000);
    clock.now = 14_000;
    clock.pending()[0]?.resolve();
    await until(() => sub.state === "reconnecting", "reconnecting");
    const reason = states.at(-1)?.[1].error;
    assert.ok(reason instanceof TimeoutError);
    assert.equal(reason.timeout, 10_000);
    assert.equal(stream.cancelled, true);
    await until(() => clock.pending().length === 1, "backoff sleep");
    assert.equal(clock.pending()[0]?.ms, 500);
    clock.pending()[0]?.resolve();
    await until(() => server.requests.length === 2, "second request");
    await sub.close();
    assert.deepEqual(clock.pending(), []);
  });

  await t.step("counts from the request", async () => {
    const clock = new FakeClock(false);
    const server = new FakeServer([]);
    const { sub } = start(server, { idleTimeout: 5_000 }, clock);
    await until(() => clock.pending().length === 1, "idle sleep");
    clock.now = 5_000;
    clock.pending()[0]?.resolve();
    await until(() => sub.state === "reconnecting", "reconnecting");
    assert.equal(server.requests[0]?.signal.aborted, true);
    await sub.close();
    assert.deepEqual(clock.pending(), []);
  });

  await t.step("idle reconnects keep the first delay", async () => {
    const clock = new FakeClock(false);
    const server = new FakeServer([]);
    const { sub } = start(server, { idleTimeout: 5_000 }, clock);
    for (let round = 1; round <= 3; round++) {
      await until(() => clock.pending().length === 1, "idle sleep");
      clock.now += 5_000;
      clock.pending()[0]?.resolve();
      await until(() => clock.pending().length === 1, "backoff sleep");
      assert.equal(clock.pending()[0]?.ms, 500, `round ${round}`);
      clock.pending()[0]?.resolve();
      await until(() => server.requests.length === round + 1, "request");
    }
    await sub.close();
    assert.deepEqual(clock.pending(), []);
  });
});

Deno.test("Subscription option checks", async (t) => {
  const base: SubscriptionInit = {
    connect: (signal) => hang(signal),
    target: { kind: "key", key: "a" },
    path: "/kv/subscribe/a",
  };

  await t.step("invalid queueSize", () => {
    assert.throws(
      () => new Subscription({ ...base, queueSize: 0 }),
      RangeError,
    );
  });

  await t.step("negative idleTimeout", () => {
    assert.throws(
      () => new Subscription({ ...base, idleTimeout: -1 }),
      RangeError,
    );
  });

  await t.step("unknown overflow policy", () => {
    const overflow = "drop-newest" as "error";
    assert.throws(() => new Subscription({ ...base, overflow }), TypeError);
  });

  await t.step("empty key and prefix", () => {
    assert.throws(
      () => new Subscription({ ...base, target: { kind: "key", key: "" } }),
      TypeError,
    );
    assert.throws(
      () =>
        new Subscription({ ...base, target: { kind: "prefix", prefix: "/" } }),
      TypeError,
    );
  });

  await t.step("zero initial delay", () => {
    assert.throws(
      () => new Subscription({ ...base, reconnect: { initialDelay: 0 } }),
      RangeError,
    );
  });
});

Deno.test("Subscription over-long line reconnects", async () => {
  const long = new ControlledStream();
  long.send("data: " + "x".repeat(200));
  const good = new ControlledStream();
  good.send(change("app/config"));
  const server = new FakeServer([long.response(), good.response()]);
  const { sub, states, events } = start(server, { maxEventSize: 128 });
  const event = await events.next();
  assert.equal(event.done, false);
  assert.equal(server.requests.length, 2);
  const reconnecting = states.find(([state]) => state === "reconnecting");
  assert.ok(reconnecting?.[1].error instanceof EventStreamError);
  assert.match(String(reconnecting?.[1].error), /maxEventSize/);
  await sub.close();
});
