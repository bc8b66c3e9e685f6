import assert from "node:assert/strict";
import {
  ConnectionError,
  ForbiddenError,
  UnauthorizedError,
} from "../src/errors.ts";
import {
  Subscription,
  type SubscriptionHooks,
  type SubscriptionState,
} from "../src/sse/subscription.ts";
import {
  type KeyRead,
  type Watch,
  type WatchInit,
  watchKey,
  type WatchUpdate,
} from "../src/sse/watch.ts";
import { ControlledStream } from "./_streams.ts";

const KEY = "app/config";

/** Sleeps that never resolve on their own: the test resolves them. */
class ManualSleeps {
  readonly pending = new Set<{ ms: number; resolve: () => void }>();
  auto = false;
  readonly requested: number[] = [];

  sleep = (ms: number, signal: AbortSignal): Promise<void> => {
    this.requested.push(ms);
    if (this.auto || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = {
        ms,
        resolve: () => {
          this.pending.delete(entry);
          signal.removeEventListener("abort", entry.resolve);
          resolve();
        },
      };
      this.pending.add(entry);
      signal.addEventListener("abort", entry.resolve, { once: true });
    });
  };

  resolveAll(): void {
    for (const entry of [...this.pending]) entry.resolve();
  }
}

/** The watched key as the server stores it, with a scripted read. */
class KeyStore {
  current: KeyRead = { exists: true, value: "v1" };
  reads = 0;
  readonly failures: Error[] = [];

  read = (_signal: AbortSignal): Promise<KeyRead> => {
    this.reads++;
    const failure = this.failures.shift();
    if (failure !== undefined) return Promise.reject(failure);
    return Promise.resolve(this.current);
  };
}

function hang(signal: AbortSignal): Promise<Response> {
  return new Promise((_resolve, reject) => {
    signal.addEventListener("abort", () => reject(signal.reason), {
      once: true,
    });
  });
}

function change(key: string, action = "update"): string {
  const data = JSON.stringify({
    key,
    action,
    timestamp: "2026-01-03T10:30:00Z",
  });
  return `event: change\ndata: ${data}\n\n`;
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 10_000; turn++) {
    if (predicate()) return;
    await Promise.resolve();
  }
  throw new Error(`Gave up waiting for ${what}`);
}

/** Lets pending reads and deliveries run to completion. */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 200; turn++) await Promise.resolve();
}

interface Harness {
  watch: Watch;
  updates: AsyncIterator<WatchUpdate, undefined>;
  store: KeyStore;
  sleeps: ManualSleeps;
  streams: ControlledStream[];
  requests: AbortSignal[];
  subscriptions: Subscription[];
  states: SubscriptionState[];
}

/**
 * Starts a watch whose subscription gets `replies` in turn (a stream, or an
 * HTTP status), then hangs like a quiet Stash stream.
 */
function startWatch(
  replies: (ControlledStream | number)[],
  overrides: Partial<WatchInit> = {},
): Harness {
  const store = new KeyStore();
  const sleeps = new ManualSleeps();
  const streams = replies.filter((reply) => reply instanceof ControlledStream);
  const requests: AbortSignal[] = [];
  const subscriptions: Subscription[] = [];
  const states: SubscriptionState[] = [];
  const connect = (signal: AbortSignal): Promise<Response> => {
    requests.push(signal);
    const reply = replies.shift();
    if (reply === undefined) return hang(signal);
    if (typeof reply === "number") {
      return Promise.resolve(new Response("refused", { status: reply }));
    }
    return Promise.resolve(reply.response());
  };
  const subscribe = (hooks: SubscriptionHooks): Subscription => {
    const subscription = new Subscription({
      ...hooks,
      connect,
      target: { kind: "key", key: KEY },
      path: "/kv/subscribe/app%2Fconfig",
      sleep: sleeps.sleep,
      random: () => 0.5,
      now: () => 0,
    });
    subscriptions.push(subscription);
    return subscription;
  };
  const watch = watchKey({
    key: KEY,
    subscribe,
    read: store.read,
    sleep: sleeps.sleep,
    random: () => 0.5,
    onStateChange: (state) => states.push(state),
    ...overrides,
  });
  return {
    watch,
    updates: watch[Symbol.asyncIterator](),
    store,
    sleeps,
    streams,
    requests,
    subscriptions,
    states,
  };
}

async function nextUpdate(
  updates: AsyncIterator<WatchUpdate, undefined>,
): Promise<WatchUpdate | undefined> {
  const result = await updates.next();
  return result.done ? undefined : result.value;
}

function value(text: string): WatchUpdate {
  return { key: KEY, exists: true, value: text };
}

Deno.test("watchKey first update", async (t) => {
  await t.step("current value", async () => {
    const { watch, updates } = startWatch([new ControlledStream()]);
    assert.deepEqual(await nextUpdate(updates), value("v1"));
    await watch.close();
  });

  await t.step("absent key", async () => {
    const harness = startWatch([]);
    harness.store.current = { exists: false };
    const first = await nextUpdate(harness.updates);
    assert.deepEqual(first, { key: KEY, exists: false });
    await harness.watch.close();
  });
});

Deno.test("watchKey changes", async (t) => {
  await t.step("value after a change", async () => {
    const stream = new ControlledStream();
    const { watch, updates, store } = startWatch([stream]);
    assert.deepEqual(await nextUpdate(updates), value("v1"));
    store.current = { exists: true, value: "v2" };
    stream.send(change(KEY));
    assert.deepEqual(await nextUpdate(updates), value("v2"));
    store.current = { exists: false };
    stream.send(change(KEY, "delete"));
    assert.deepEqual(await nextUpdate(updates), { key: KEY, exists: false });
    await watch.close();
  });

  await t.step("events for other keys ignored", async () => {
    const stream = new ControlledStream();
    const { watch, updates, store } = startWatch([stream]);
    assert.deepEqual(await nextUpdate(updates), value("v1"));
    await settle();
    const readsBefore = store.reads;
    stream.send(change("app/other"));
    await settle();
    assert.equal(store.reads, readsBefore);
    await watch.close();
  });

  await t.step("burst coalesced to the last value", async () => {
    const stream = new ControlledStream();
    const { watch, updates, store } = startWatch([stream]);
    assert.deepEqual(await nextUpdate(updates), value("v1"));
    for (const text of ["v2", "v3", "v4"]) {
      store.current = { exists: true, value: text };
      stream.send(change(KEY));
      await Promise.resolve();
    }
    await settle();
    assert.deepEqual(await nextUpdate(updates), value("v4"));
    store.current = { exists: true, value: "v5" };
    stream.send(change(KEY));
    assert.deepEqual(await nextUpdate(updates), value("v5"));
    await watch.close();
  });

  await t.step("same value not yielded twice", async () => {
    const stream = new ControlledStream();
    const { watch, updates, store } = startWatch([stream]);
    assert.deepEqual(await nextUpdate(updates), value("v1"));
    stream.send(change(KEY));
    await settle();
    store.current = { exists: true, value: "v2" };
    stream.send(change(KEY));
    assert.deepEqual(await nextUpdate(updates), value("v2"));
    await watch.close();
  });

  await t.step("change back before consumption dropped", async () => {
    const stream = new ControlledStream();
    const { watch, updates, store } = startWatch([stream]);
    assert.deepEqual(await nextUpdate(updates), value("v1"));
    store.current = { exists: true, value: "v2" };
    stream.send(change(KEY));
    await settle();
    store.current = { exists: true, value: "v1" };
    stream.send(change(KEY));
    await settle();
    store.current = { exists: true, value: "v3" };
    stream.send(change(KEY));
    assert.deepEqual(await nextUpdate(updates), value("v3"));
    await watch.close();
  });
});

Deno.test("watchKey resync", async (t) => {
  await t.step("reads after a server restart", async () => {
    const first = new ControlledStream();
    const harness = startWatch([first, 503]);
    const { watch, updates, store, sleeps, requests } = harness;
    assert.deepEqual(await nextUpdate(updates), value("v1"));
    await until(() => harness.states.includes("open"), "open stream");
    // The server restarts: the stream ends, the first reconnect gets 503,
    // and the key changes while no subscription exists.
    first.end();
    store.current = { exists: true, value: "v9" };
    sleeps.auto = true;
    sleeps.resolveAll();
    await until(() => requests.length === 3, "third request");
    assert.deepEqual(await nextUpdate(updates), value("v9"));
    assert.equal(harness.subscriptions[0]?.reconnects, 2);
    await watch.close();
  });

  await t.step("delayed read after each request", async () => {
    const harness = startWatch([], { resyncDelay: 250 });
    const { watch, updates, store, sleeps } = harness;
    assert.deepEqual(await nextUpdate(updates), value("v1"));
    await until(() => sleeps.pending.size === 1, "resync sleep");
    assert.deepEqual([...sleeps.pending].map((entry) => entry.ms), [250]);
    store.current = { exists: true, value: "v2" };
    sleeps.resolveAll();
    assert.deepEqual(await nextUpdate(updates), value("v2"));
    await watch.close();
  });

  await t.step("read on open", async () => {
    const stream = new ControlledStream();
    const harness = startWatch([stream]);
    assert.deepEqual(await nextUpdate(harness.updates), value("v1"));
    await until(() => harness.states.includes("open"), "open stream");
    await settle();
    assert.ok(harness.store.reads >= 2);
    await harness.watch.close();
  });
});

Deno.test("watchKey errors", async (t) => {
  await t.step("transient read error retried", async () => {
    const errors: [unknown, number][] = [];
    const harness = startWatch([], {
      onReadError: (error, delay) => errors.push([error, delay]),
    });
    harness.store.failures.push(new ConnectionError("refused"));
    harness.sleeps.auto = true;
    assert.deepEqual(await nextUpdate(harness.updates), value("v1"));
    assert.equal(errors.length, 1);
    assert.ok(errors[0]?.[0] instanceof ConnectionError);
    assert.equal(errors[0]?.[1], 500);
    await harness.watch.close();
  });

  await t.step("permanent read error ends the watch", async () => {
    const harness = startWatch([]);
    harness.store.failures.push(
      new UnauthorizedError("bad token", { status: 401 }),
    );
    await assert.rejects(harness.updates.next(), UnauthorizedError);
    assert.equal(harness.subscriptions[0]?.state, "closed");
    assert.deepEqual(await harness.updates.next(), {
      done: true,
      value: undefined,
    });
    await harness.watch.close();
  });

  await t.step("subscription error ends the watch", async () => {
    const harness = startWatch([403]);
    const first = await harness.updates.next().catch((error) => error);
    const error = first instanceof ForbiddenError
      ? first
      : await harness.updates.next().catch((caught) => caught);
    assert.ok(error instanceof ForbiddenError);
    await harness.watch.close();
  });
});

Deno.test("watchKey close", async (t) => {
  await t.step("while waiting for a change", async () => {
    const stream = new ControlledStream();
    const harness = startWatch([stream]);
    assert.deepEqual(await nextUpdate(harness.updates), value("v1"));
    const next = harness.updates.next();
    await harness.watch.close();
    assert.deepEqual(await next, { done: true, value: undefined });
    assert.equal(stream.cancelled, true);
    assert.equal(harness.subscriptions[0]?.state, "closed");
    assert.equal(harness.sleeps.pending.size, 0);
  });

  await t.step("caller signal abort", async () => {
    const controller = new AbortController();
    const harness = startWatch([], { signal: controller.signal });
    const seen: WatchUpdate[] = [];
    const result = await nextUpdate(harness.updates);
    if (result !== undefined) seen.push(result);
    controller.abort();
    assert.deepEqual(await harness.updates.next(), {
      done: true,
      value: undefined,
    });
    assert.deepEqual(seen, [value("v1")]);
    assert.equal(harness.requests[0]?.aborted, true);
    await harness.watch.close();
    assert.equal(harness.sleeps.pending.size, 0);
  });

  await t.step("break and await using close", async () => {
    const stream = new ControlledStream();
    const sleeps = new ManualSleeps();
    let watched: Watch | undefined;
    {
      await using watch = watchKey({
        key: KEY,
        subscribe: (hooks) =>
          new Subscription({
            ...hooks,
            connect: () => Promise.resolve(stream.response()),
            target: { kind: "key", key: KEY },
            path: "/kv/subscribe/app%2Fconfig",
            sleep: sleeps.sleep,
          }),
        read: () => Promise.resolve({ exists: true, value: "v1" }),
        sleep: sleeps.sleep,
      });
      watched = watch;
      for await (const update of watch) {
        assert.deepEqual(update, value("v1"));
        break;
      }
    }
    assert.equal(watched?.state, "closed");
    assert.equal(stream.cancelled, true);
    assert.equal(sleeps.pending.size, 0);
  });

  await t.step("second iterator throws TypeError", async () => {
    const harness = startWatch([]);
    assert.throws(() => harness.watch[Symbol.asyncIterator](), TypeError);
    await harness.watch.close();
  });
});
