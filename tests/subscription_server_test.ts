import assert from "node:assert/strict";
import {
  ForbiddenError,
  UnauthorizedError,
  UnsupportedError,
} from "../src/errors.ts";
import {
  type ChangeEvent,
  Subscription,
  type SubscriptionInit,
  type SubscriptionTarget,
} from "../src/sse/subscription.ts";
import { type KeyRead, watchKey } from "../src/sse/watch.ts";
import { createStashServer, type StashServer } from "../testing.ts";

const BASE = "http://stash.test";

type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

/** Builds the subscribe path of a target, encoded as Stash expects. */
function subscribePath(target: SubscriptionTarget): string {
  switch (target.kind) {
    case "key":
      return `/kv/subscribe/${encodeURIComponent(target.key)}`;
    case "prefix":
      return `/kv/subscribe/${encodeURIComponent(target.prefix)}/*`;
    case "all":
      return "/kv/subscribe/*";
  }
}

function subscribe(
  fetch: Fetch,
  base: string,
  target: SubscriptionTarget,
  overrides: Partial<SubscriptionInit> = {},
): Subscription {
  const path = subscribePath(target);
  return new Subscription({
    connect: (signal, lastEventId) =>
      fetch(`${base}${path}`, {
        signal,
        headers: lastEventId === undefined
          ? {}
          : { "last-event-id": lastEventId },
      }),
    target,
    path,
    // The injected sleep returns at once, so reconnects never really wait.
    sleep: () => Promise.resolve(),
    ...overrides,
  });
}

async function put(fetch: Fetch, base: string, key: string, value: string) {
  const response = await fetch(`${base}/kv/${encodeURIComponent(key)}`, {
    method: "PUT",
    body: value,
  });
  await response.body?.cancel();
  assert.ok(response.ok, `PUT ${key} returned ${response.status}`);
}

async function remove(fetch: Fetch, base: string, key: string) {
  const response = await fetch(`${base}/kv/${encodeURIComponent(key)}`, {
    method: "DELETE",
  });
  await response.body?.cancel();
  assert.ok(response.ok, `DELETE ${key} returned ${response.status}`);
}

/** Yields to the event loop until `predicate` is true, at most 500 turns. */
async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 500; turn++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  throw new Error(`Gave up waiting for ${what}`);
}

async function take(
  events: AsyncIterator<ChangeEvent, undefined>,
  count: number,
): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < count; i++) {
    const result = await events.next();
    if (result.done) break;
    seen.push(`${result.value.action} ${result.value.key}`);
  }
  return seen;
}

async function withServer(
  run: (server: StashServer) => Promise<void>,
  options: Parameters<typeof createStashServer>[0] = {},
): Promise<void> {
  const server = createStashServer(options);
  try {
    await run(server);
  } finally {
    await server.close();
  }
}

Deno.test("Subscription against the test server", async (t) => {
  await t.step("exact key events", async () => {
    await withServer(async (server) => {
      const sub = subscribe(server.fetch, BASE, {
        kind: "key",
        key: "app/config",
      });
      const events = sub[Symbol.asyncIterator]();
      await until(() => server.subscriberCount === 1, "subscriber");
      assert.equal(sub.state, "connecting");
      await put(server.fetch, BASE, "app/config", "v1");
      await put(server.fetch, BASE, "app/other", "x");
      await put(server.fetch, BASE, "app/config", "v2");
      await remove(server.fetch, BASE, "app/config");
      assert.deepEqual(await take(events, 3), [
        "create app/config",
        "update app/config",
        "delete app/config",
      ]);
      assert.equal(sub.state, "open");
      await sub.close();
      await until(() => server.subscriberCount === 0, "no subscriber");
    });
  });

  await t.step("prefix and all", async () => {
    await withServer(async (server) => {
      const prefix = subscribe(server.fetch, BASE, {
        kind: "prefix",
        prefix: "app",
      });
      const all = subscribe(server.fetch, BASE, { kind: "all" });
      const prefixEvents = prefix[Symbol.asyncIterator]();
      const allEvents = all[Symbol.asyncIterator]();
      await until(() => server.subscriberCount === 2, "subscribers");
      await put(server.fetch, BASE, "application/x", "1");
      await put(server.fetch, BASE, "app/a", "1");
      await put(server.fetch, BASE, "app/b/c", "1");
      assert.deepEqual(await take(prefixEvents, 2), [
        "create app/a",
        "create app/b/c",
      ]);
      assert.deepEqual(await take(allEvents, 3), [
        "create application/x",
        "create app/a",
        "create app/b/c",
      ]);
      await prefix.close();
      await all.close();
    });
  });

  await t.step("key ending in ping through its parent", async () => {
    await withServer(async (server) => {
      const target = { kind: "key", key: "app/ping" } as const;
      const path = "/kv/subscribe/app/*";
      const sub = subscribe(server.fetch, BASE, target, {
        connect: (signal) => server.fetch(`${BASE}${path}`, { signal }),
        path,
      });
      const events = sub[Symbol.asyncIterator]();
      await until(() => server.subscriberCount === 1, "subscriber");
      await put(server.fetch, BASE, "app/pong", "1");
      await put(server.fetch, BASE, "app/ping", "1");
      assert.deepEqual(await take(events, 1), ["create app/ping"]);
      await sub.close();
    });
  });

  await t.step("reconnects after a server restart", async () => {
    await withServer(async (server) => {
      const states: string[] = [];
      const sub = subscribe(server.fetch, BASE, { kind: "all" }, {
        onStateChange: (state) => states.push(state),
      });
      const events = sub[Symbol.asyncIterator]();
      await until(() => server.subscriberCount === 1, "subscriber");
      await put(server.fetch, BASE, "a", "1");
      assert.deepEqual(await take(events, 1), ["create a"]);
      server.dropStreams();
      await until(() => sub.reconnects === 1, "reconnect");
      await until(() => server.subscriberCount === 1, "new subscriber");
      await put(server.fetch, BASE, "a", "2");
      assert.deepEqual(await take(events, 1), ["update a"]);
      assert.deepEqual(states, [
        "connecting",
        "open",
        "reconnecting",
        "connecting",
        "open",
      ]);
      await sub.close();
    });
  });

  await t.step("v0.13.0 server is unsupported", async () => {
    await withServer(async (server) => {
      const sub = subscribe(server.fetch, BASE, { kind: "key", key: "x" });
      await assert.rejects(
        sub[Symbol.asyncIterator]().next(),
        UnsupportedError,
      );
      await sub.close();
    }, { version: "v0.13.0" });
  });

  await t.step("v0.13.0 stored value is unsupported", async () => {
    await withServer(async (server) => {
      server.put("subscribe/x", "stored");
      const sub = subscribe(server.fetch, BASE, { kind: "key", key: "x" });
      await assert.rejects(
        sub[Symbol.asyncIterator]().next(),
        /instead of text\/event-stream/,
      );
      await sub.close();
    }, { version: "v0.13.0" });
  });

  await t.step("missing token and denied key", async () => {
    await withServer(async (server) => {
      const anonymous = subscribe(server.fetch, BASE, { kind: "all" });
      await assert.rejects(
        anonymous[Symbol.asyncIterator]().next(),
        UnauthorizedError,
      );
      const scoped: Fetch = (input, init) =>
        server.fetch(input, {
          ...init,
          headers: { ...init?.headers, authorization: "Bearer reader" },
        });
      const denied = subscribe(scoped, BASE, { kind: "key", key: "secret" });
      await assert.rejects(
        denied[Symbol.asyncIterator]().next(),
        ForbiddenError,
      );
      await anonymous.close();
      await denied.close();
    }, { tokens: [{ token: "reader", permissions: { "app/*": "r" } }] });
  });
});

Deno.test("Subscription over a loopback socket", async () => {
  const server = createStashServer();
  const listener = await server.listen();
  try {
    const sub = subscribe(fetch, listener.url, {
      kind: "key",
      key: "app/config",
    });
    const events = sub[Symbol.asyncIterator]();
    await until(() => server.subscriberCount === 1, "subscriber");
    await put(fetch, listener.url, "app/config", "v1");
    await put(fetch, listener.url, "app/config", "v2");
    assert.deepEqual(await take(events, 2), [
      "create app/config",
      "update app/config",
    ]);
    await sub.close();
    await until(() => server.subscriberCount === 0, "no subscriber");
  } finally {
    await listener.close();
    await server.close();
  }
});

Deno.test("watchKey against the test server", async () => {
  await withServer(async (server) => {
    const key = "app/config";
    const read = async (signal: AbortSignal): Promise<KeyRead> => {
      const url = `${BASE}/kv/${encodeURIComponent(key)}`;
      const response = await server.fetch(url, { signal });
      if (response.status === 404) {
        await response.body?.cancel();
        return { exists: false };
      }
      return { exists: true, value: await response.text() };
    };
    const watch = watchKey({
      key,
      subscribe: (hooks) =>
        subscribe(server.fetch, BASE, { kind: "key", key }, hooks),
      read,
      sleep: () => Promise.resolve(),
    });
    const updates = watch[Symbol.asyncIterator]();
    assert.deepEqual((await updates.next()).value, { key, exists: false });
    await until(() => server.subscriberCount === 1, "subscriber");
    await put(server.fetch, BASE, key, "v1");
    assert.deepEqual((await updates.next()).value, {
      key,
      exists: true,
      value: "v1",
    });
    // A restart loses the change made while no stream is open; the read
    // after the reconnect finds it.
    server.dropStreams();
    server.put(key, "v2");
    assert.deepEqual((await updates.next()).value, {
      key,
      exists: true,
      value: "v2",
    });
    await watch.close();
    await until(() => server.subscriberCount === 0, "no subscriber");
  });
});
