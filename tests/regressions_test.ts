// Regression tests: secrets echoed by servers, durations past the timer
// limit, keys that normalise to ".", and options checked too late.

import assert from "node:assert/strict";
import {
  Client,
  type ClientOptions,
  normalizeKey,
  PayloadTooLargeError,
  ResponseError,
  UnauthorizedError,
} from "../mod.ts";
import { createStashServer } from "../testing.ts";
import { redactSecrets } from "../src/errors.ts";

const TOKEN = "tok_SUPERSECRET_123456";
const PASSPHRASE = "passphrase that must stay hidden";

function echoingServer(status: number, body: (request: Request) => string) {
  const server = createStashServer();
  server.faults.add({
    times: Infinity,
    action: {
      type: "handler",
      handler: (request) =>
        new Response(body(request), {
          status,
          headers: { "content-type": "text/plain" },
        }),
    },
  });
  return server;
}

function clientFor(
  server: ReturnType<typeof createStashServer>,
  options: ClientOptions = {},
): Client {
  return new Client("http://stash.test", {
    fetch: server.fetch,
    token: TOKEN,
    zkKey: PASSPHRASE,
    retries: 0,
    ...options,
  });
}

function assertRedacted(error: unknown): void {
  assert.ok(error instanceof ResponseError, String(error));
  for (
    const text of [
      error.message,
      error.serverMessage,
      String(error),
      JSON.stringify(error),
      Deno.inspect(error),
      error.stack ?? "",
    ]
  ) {
    assert.ok(!text.includes(TOKEN), text);
    assert.ok(!text.includes(encodeURIComponent(PASSPHRASE)), text);
    assert.ok(!text.includes(PASSPHRASE), text);
  }
  assert.match(error.serverMessage, /\[redacted\]/);
}

Deno.test("echoed secrets are redacted", async (t) => {
  await t.step("token echoed in a 400 body", async () => {
    const server = echoingServer(
      400,
      (request) =>
        `bad request, you sent ${request.headers.get("authorization")}`,
    );
    await using client = clientFor(server);
    assertRedacted(await client.get("k").catch((e) => e));
  });

  await t.step("token echoed in a JSON 401", async () => {
    const server = createStashServer();
    server.faults.add({
      action: {
        type: "respond",
        status: 401,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ error: `unknown token ${TOKEN}` }),
      },
    });
    await using client = clientFor(server);
    const error = await client.get("k").catch((e) => e);
    assert.ok(error instanceof UnauthorizedError);
    assertRedacted(error);
  });

  await t.step("passphrase, raw and percent-encoded", async () => {
    const server = echoingServer(
      500,
      () => `${PASSPHRASE} and ${encodeURIComponent(PASSPHRASE)}`,
    );
    await using client = clientFor(server);
    assertRedacted(await client.list().catch((e) => e));
  });

  await t.step("subscription refusal", async () => {
    const server = echoingServer(403, () => `denied for Bearer ${TOKEN}`);
    await using client = clientFor(server);
    const subscription = client.subscribe("k");
    const error = await subscription[Symbol.asyncIterator]().next().catch((
      e,
    ) => e);
    assertRedacted(error);
  });
});

Deno.test("redaction matches whole tokens only", async (t) => {
  const cases: [string, string, string][] = [
    ["t", "key not found", "key not found"],
    ["found", "key not found", "key not [redacted]"],
    ["abc123", "token=abc123;", "token=[redacted];"],
    ["abc123", "xabc123 and abc1234", "xabc123 and abc1234"],
    ["-abc.", "x-abc.y", "x[redacted]y"],
    ["a.b*c", "use a.b*c here", "use [redacted] here"],
  ];
  for (const [secret, text, expected] of cases) {
    await t.step(`${secret} in ${text}`, () => {
      assert.equal(redactSecrets(text, [secret]), expected);
    });
  }

  await t.step("short token leaves the server message alone", async () => {
    const server = createStashServer({
      tokens: [{ token: "t", permissions: { "*": "rw" } }],
    });
    await using client = new Client("http://stash.test", {
      fetch: server.fetch,
      token: "t",
    });
    const error = await client.get("missing").catch((e) => e);
    assert.equal(error.serverMessage, "key not found");
  });
});

Deno.test("durations past the timer limit are rejected", () => {
  const limit = 2 ** 31 - 1;
  for (
    const options of [
      { timeout: 2 ** 31 },
      { timeout: 1e20 },
      { retryDelay: 2 ** 31 },
      { maxRetryDelay: 1e12 },
    ]
  ) {
    assert.throws(
      () => new Client("http://host", options),
      (error: Error) =>
        error instanceof RangeError && error.message.includes(String(limit)),
      JSON.stringify(options),
    );
  }
  for (
    const options of [
      { reconnect: { maxDelay: 2 ** 31 } },
      { reconnect: { initialDelay: 1e15 } },
      { subscribe: { idleTimeout: 2 ** 31 } },
    ]
  ) {
    assert.throws(
      () => new Client("http://host", options),
      RangeError,
      JSON.stringify(options),
    );
  }
  new Client("http://host", { timeout: limit, maxRetryDelay: limit });
});

Deno.test("keys stored as dot segments are rejected", async () => {
  const server = createStashServer();
  await using client = new Client("http://stash.test", { fetch: server.fetch });
  for (const key of ["./", "/./", " . ", "../", "/../", " /./ "]) {
    await assert.rejects(
      client.set(key, "x"),
      (error: Error) =>
        error instanceof TypeError && /URLs cannot address/.test(error.message),
      JSON.stringify(key),
    );
  }
  assert.equal(server.requests.length, 0);
  assert.deepEqual(server.keys(), []);
});

Deno.test("C1 control characters are rejected in keys", async () => {
  const server = createStashServer();
  await using client = new Client("http://stash.test", { fetch: server.fetch });
  for (const key of ["a\u0080b", "a\u0085b", "a\u009Bb", "a\u009Fb"]) {
    await assert.rejects(client.set(key, "x"), /control characters/);
  }
  assert.equal(server.requests.length, 0);
});

Deno.test("options checked at construction", () => {
  assert.throws(
    () => new Client("http://host", { zk: { cacheSize: 8 } }),
    /zk option: it needs the zkKey option/,
  );
  assert.throws(
    () => new Client("http://host", { onRetry: 5 as unknown as () => void }),
    /onRetry option: expected a function, got number/,
  );
  assert.throws(
    () => new Client("http://host", { headers: 5 as unknown as HeadersInit }),
    /Invalid headers option/,
  );
});

Deno.test("passphrase with a lone surrogate names the cause", () => {
  assert.throws(
    () => new Client("http://host", { zkKey: "\uD800".repeat(16) }),
    (error: Error) =>
      error instanceof TypeError && /lone UTF-16 surrogate/.test(error.message),
  );
});

Deno.test("normalizeKey rejects non-strings", () => {
  assert.throws(
    () => normalizeKey(5 as unknown as string),
    (error: Error) =>
      error instanceof TypeError &&
      /expected a string, got number/.test(error.message),
  );
});

Deno.test("server 413 reports the body size", async () => {
  const server = createStashServer({ bodyLimit: 10 });
  await using client = new Client("http://stash.test", { fetch: server.fetch });
  const error = await client.set("k", "x".repeat(11)).catch((e) => e);
  assert.ok(error instanceof PayloadTooLargeError);
  assert.equal(error.status, 413);
  assert.equal(error.size, 11);
  assert.equal(error.key, "k");
});

Deno.test("maxEventSize is a subscription option", async () => {
  const server = createStashServer();
  await using client = new Client("http://stash.test", {
    fetch: server.fetch,
    reconnect: { initialDelay: 1, maxDelay: 1 },
  });
  const errors: Error[] = [];
  const subscription = client.subscribe("k", {
    maxEventSize: 64,
    onStateChange: (state, info) => {
      if (state === "reconnecting" && info.error) errors.push(info.error);
    },
  });
  const next = subscription[Symbol.asyncIterator]().next();
  for (let turn = 0; turn < 100 && server.subscriberCount === 0; turn++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  server.publishRaw(`data: ${"x".repeat(100)}\n\n`);
  for (let turn = 0; turn < 100 && errors.length === 0; turn++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.match(String(errors[0]), /maxEventSize subscription option/);
  await subscription.close();
  assert.deepEqual(await next, { done: true, value: undefined });
});
