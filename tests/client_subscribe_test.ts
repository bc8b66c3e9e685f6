import assert from "node:assert/strict";
import {
  type ChangeEvent,
  Client,
  type ClientOptions,
  ForbiddenError,
  type SubscriptionState,
  UnauthorizedError,
  UnsupportedError,
  type WatchUpdate,
} from "../mod.ts";
import { createStashServer, type StashServerOptions } from "../testing.ts";

function setup(
  serverOptions: StashServerOptions = {},
  clientOptions: ClientOptions = {},
) {
  const server = createStashServer(serverOptions);
  const client = new Client("http://stash.test", {
    fetch: server.fetch,
    sleep: () => Promise.resolve(),
    ...clientOptions,
  });
  return {
    server,
    client,
    [Symbol.asyncDispose]: async () => {
      await client.close();
      await server.close();
    },
  };
}

/** Resolves once the server has `count` open subscription streams. */
async function waitForSubscribers(
  server: { subscriberCount: number },
  count: number,
): Promise<void> {
  for (let turn = 0; turn < 1000; turn++) {
    if (server.subscriberCount >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(
    `expected ${count} subscribers, have ${server.subscriberCount}`,
  );
}

async function take<T>(iterator: AsyncIterator<T>): Promise<T> {
  const result = await iterator.next();
  assert.equal(result.done, false);
  return result.value as T;
}

Deno.test("client subscriptions", async (t) => {
  await t.step("exact key receives its changes only", async () => {
    await using env = setup();
    const sub = env.client.subscribe("app/config");
    const events = sub[Symbol.asyncIterator]();
    await waitForSubscribers(env.server, 1);
    await env.client.set("app/other", "x");
    await env.client.set("app/config", "1");
    await env.client.set("app/config", "2");
    await env.client.delete("app/config");
    const seen: ChangeEvent[] = [];
    for (let index = 0; index < 3; index++) seen.push(await take(events));
    assert.deepEqual(seen.map((e) => [e.key, e.action]), [
      ["app/config", "create"],
      ["app/config", "update"],
      ["app/config", "delete"],
    ]);
    assert.ok(seen[0]?.timestamp instanceof Date);
    await sub.close();
    assert.equal(sub.state, "closed");
  });

  await t.step("prefix is segment-aligned", async () => {
    await using env = setup();
    const sub = env.client.subscribePrefix("app");
    const events = sub[Symbol.asyncIterator]();
    await waitForSubscribers(env.server, 1);
    await env.client.set("application/x", "no");
    await env.client.set("app/x", "yes");
    assert.equal((await take(events)).key, "app/x");
    assert.equal(env.server.requests.at(-3)?.url, "/kv/subscribe/app/*");
    await sub.close();
  });

  await t.step("all keys", async () => {
    await using env = setup();
    const sub = env.client.subscribeAll();
    const events = sub[Symbol.asyncIterator]();
    await waitForSubscribers(env.server, 1);
    await env.client.set("a", "1");
    await env.client.set("b/c", "2");
    assert.equal((await take(events)).key, "a");
    assert.equal((await take(events)).key, "b/c");
    await sub.close();
  });

  await t.step("key ending in ping subscribes to its parent", async () => {
    await using env = setup();
    const sub = env.client.subscribe("svc/ping");
    const events = sub[Symbol.asyncIterator]();
    await waitForSubscribers(env.server, 1);
    assert.equal(env.server.requests.at(-1)?.url, "/kv/subscribe/svc/*");
    await env.client.set("svc/other", "x");
    await env.client.set("svc/ping", "y");
    const event = await take(events);
    assert.equal(event.key, "svc/ping");
    await sub.close();
  });

  await t.step("server without subscriptions is UnsupportedError", async () => {
    await using env = setup({ version: "v0.13.0" });
    const sub = env.client.subscribe("app/config");
    await assert.rejects(
      sub[Symbol.asyncIterator]().next(),
      (error: Error) =>
        error instanceof UnsupportedError &&
        /not supported/.test(error.message),
    );
  });

  await t.step(
    "bad token is UnauthorizedError without reconnects",
    async () => {
      await using env = setup({
        tokens: [{ token: "good", permissions: { "*": "rw" } }],
      }, { token: "bad" });
      const sub = env.client.subscribeAll();
      await assert.rejects(
        sub[Symbol.asyncIterator]().next(),
        UnauthorizedError,
      );
      assert.equal(sub.reconnects, 0);
    },
  );

  await t.step("unreadable key is ForbiddenError", async () => {
    await using env = setup({
      tokens: [{ token: "reader", permissions: { "app/*": "r" } }],
    }, { token: "reader" });
    const sub = env.client.subscribe("other/key");
    const error = await sub[Symbol.asyncIterator]().next().catch((e) => e);
    assert.ok(error instanceof ForbiddenError);
    assert.equal(error.key, "other/key");
  });

  await t.step("closing the client ends its subscriptions", async () => {
    await using env = setup();
    const sub = env.client.subscribeAll();
    const next = sub[Symbol.asyncIterator]().next();
    await waitForSubscribers(env.server, 1);
    await env.client.close();
    assert.deepEqual(await next, { done: true, value: undefined });
    assert.equal(sub.state, "closed");
    assert.throws(() => env.client.subscribeAll(), /closed/);
  });

  await t.step("invalid key or prefix fails before connecting", async () => {
    await using env = setup();
    assert.throws(() => env.client.subscribe(""), TypeError);
    assert.throws(() => env.client.subscribePrefix("/"), /subscribeAll/);
    assert.equal(env.server.requests.length, 0);
  });

  await t.step("reconnect after the server drops streams", async () => {
    await using env = setup();
    const states: SubscriptionState[] = [];
    const sub = env.client.subscribe("k", {
      onStateChange: (state) => states.push(state),
    });
    const events = sub[Symbol.asyncIterator]();
    await waitForSubscribers(env.server, 1);
    await env.client.set("k", "1");
    await take(events);
    env.server.dropStreams();
    await waitForSubscribers(env.server, 1);
    await env.client.set("k", "2");
    assert.equal((await take(events)).action, "update");
    assert.ok(sub.reconnects >= 1);
    assert.ok(states.includes("reconnecting"));
    await sub.close();
  });
});

Deno.test("client watch", async (t) => {
  await t.step("yields current value, then each change", async () => {
    await using env = setup();
    await env.client.set("w", "one");
    const watch = env.client.watch("w", { resyncDelay: 0 });
    const updates = watch[Symbol.asyncIterator]();
    assert.deepEqual(await take(updates), {
      key: "w",
      exists: true,
      value: "one",
    });
    await waitForSubscribers(env.server, 1);
    await env.client.set("w", "two");
    let update: WatchUpdate = await take(updates);
    while (update.exists && update.value === "one") {
      update = await take(updates);
    }
    assert.deepEqual(update, { key: "w", exists: true, value: "two" });
    await env.client.delete("w");
    assert.deepEqual(await take(updates), { key: "w", exists: false });
    await watch.close();
  });

  await t.step("caller's subscription hooks still run", async () => {
    await using env = setup();
    const states: SubscriptionState[] = [];
    const watch = env.client.watch("h", {
      resyncDelay: 0,
      subscription: { onStateChange: (state) => states.push(state) },
    });
    const updates = watch[Symbol.asyncIterator]();
    assert.deepEqual(await take(updates), { key: "h", exists: false });
    await waitForSubscribers(env.server, 1);
    await env.client.set("h", "v");
    assert.deepEqual(await take(updates), {
      key: "h",
      exists: true,
      value: "v",
    });
    assert.ok(states.includes("open"), states.join());
    await watch.close();
    assert.equal(states.at(-1), "closed");
  });

  await t.step("decrypts zero-knowledge values", async () => {
    await using env = setup({}, { zkKey: "watch passphrase 0123456789" });
    const watch = env.client.watch("secret/w", { resyncDelay: 0 });
    const updates = watch[Symbol.asyncIterator]();
    assert.deepEqual(await take(updates), { key: "secret/w", exists: false });
    await waitForSubscribers(env.server, 1);
    await env.client.set("secret/w", "hidden");
    assert.deepEqual(await take(updates), {
      key: "secret/w",
      exists: true,
      value: "hidden",
    });
    assert.ok(
      new TextDecoder().decode(env.server.getRaw("secret/w")).startsWith(
        "$ZK$",
      ),
    );
    await watch.close();
  });

  await t.step("ends on the last value after a server restart", async () => {
    await using env = setup();
    await env.client.set("r", "before");
    const watch = env.client.watch("r", { resyncDelay: 0 });
    const updates = watch[Symbol.asyncIterator]();
    assert.deepEqual(await take(updates), {
      key: "r",
      exists: true,
      value: "before",
    });
    await waitForSubscribers(env.server, 1);
    env.server.dropStreams();
    // Written while no stream is open: only the re-read after reconnecting
    // can see it.
    env.server.put("r", "during");
    let update = await take(updates);
    assert.deepEqual(update, { key: "r", exists: true, value: "during" });
    await waitForSubscribers(env.server, 1);
    await env.client.set("r", "after");
    update = await take(updates);
    assert.deepEqual(update, { key: "r", exists: true, value: "after" });
    await watch.close();
  });
});
