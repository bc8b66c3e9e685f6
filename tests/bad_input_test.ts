/**
 * Bad input that `options_test.ts` and `keys_test.ts` leave out: runtime
 * types from JavaScript callers, per-call and subscription options, header
 * values with CR or LF, broken `fetch` functions, huge keys, non-UTF-8
 * values. Each case either fails before a request is sent (the in-process
 * server's `requests` stays empty) or has the documented behaviour tested.
 */

import assert from "node:assert/strict";
import {
  Client,
  type ClientOptions,
  ConnectionError,
  ResponseError,
  StashError,
} from "../mod.ts";
import { createStashServer } from "../testing.ts";

const KEY = "app/config";

function setup(options: ClientOptions = {}) {
  const server = createStashServer();
  const client = new Client("http://stash.test", {
    fetch: server.fetch,
    retries: 2,
    sleep: () => Promise.resolve(),
    ...options,
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

// deno-lint-ignore no-explicit-any
type Loose = any;

const WRONG_TYPES: [string, unknown][] = [
  ["number", 42],
  ["null", null],
  ["object", { key: "a" }],
  ["array", ["a"]],
  ["symbol", Symbol("key")],
  ["bigint", 10n],
  ["boolean", true],
  ["function", () => "a"],
];

Deno.test("keys of every wrong type send nothing", async (t) => {
  await using env = setup();
  const client = env.client as Loose;
  const calls: [string, (key: unknown) => unknown][] = [
    ["get", (key) => client.get(key)],
    ["getBytes", (key) => client.getBytes(key)],
    ["getJson", (key) => client.getJson(key)],
    ["getOrDefault", (key) => client.getOrDefault(key, "x")],
    ["set", (key) => client.set(key, "v")],
    ["setJson", (key) => client.setJson(key, {})],
    ["delete", (key) => client.delete(key)],
    ["has", (key) => client.has(key)],
    ["info", (key) => client.info(key)],
    ["history", (key) => client.history(key)],
    ["list prefix", (key) => client.list(key)],
  ];
  for (const [method, call] of calls) {
    for (const [kind, key] of WRONG_TYPES) {
      await t.step(`${method} with ${kind}`, async () => {
        await assert.rejects(
          async () => await call(key),
          (error: Error) =>
            error instanceof TypeError &&
            /Invalid (key|prefix)/.test(error.message),
        );
      });
    }
  }
  assert.equal(env.server.requests.length, 0);
});

Deno.test("subscribe arguments send nothing", async (t) => {
  await using env = setup();
  const client = env.client as Loose;
  for (const [kind, key] of WRONG_TYPES) {
    await t.step(`subscribe with ${kind}`, () => {
      assert.throws(() => client.subscribe(key), TypeError);
      assert.throws(() => client.subscribePrefix(key), TypeError);
      assert.throws(() => client.watch(key), TypeError);
    });
  }

  const keys: [string, string, RegExp][] = [
    ["empty", "", /empty/],
    ["whitespace", " \t ", /empty/],
    ["slashes", "//", /empty/],
    ["newline", "a\nb", /control characters/],
    ["NUL", "a\u0000b", /control characters/],
    ["lone surrogate", "a\uD800", /lone UTF-16 surrogate/],
  ];
  for (const [name, key, message] of keys) {
    await t.step(`subscribe key ${name}`, () => {
      assert.throws(() => client.subscribe(key), message);
      assert.throws(() => client.watch(key), message);
    });
    await t.step(`subscribePrefix ${name}`, () => {
      assert.throws(() => client.subscribePrefix(key), TypeError);
    });
  }

  const options: [string, unknown, ErrorConstructor][] = [
    ["null options", null, TypeError],
    ["number options", 5, TypeError],
    ["signal not an AbortSignal", { signal: {} }, TypeError],
    ["queueSize zero", { queueSize: 0 }, RangeError],
    ["queueSize fraction", { queueSize: 1.5 }, RangeError],
    ["queueSize string", { queueSize: "10" }, RangeError],
    ["idleTimeout negative", { idleTimeout: -1 }, RangeError],
    ["idleTimeout NaN", { idleTimeout: Number.NaN }, RangeError],
    ["overflow unknown", { overflow: "drop-newest" }, TypeError],
  ];
  for (const [name, value, type] of options) {
    await t.step(`subscribe ${name}`, () => {
      assert.throws(() => client.subscribe(KEY, value), type);
      assert.throws(() => client.subscribeAll(value), type);
    });
  }

  await t.step("watch options null", () => {
    assert.throws(() => client.watch(KEY, null), /call options/);
  });

  await t.step("client reconnect option checked on construction", () => {
    assert.throws(
      () => setup({ reconnect: { initialDelay: -1 } }),
      /reconnect\.initialDelay/,
    );
    assert.throws(
      () => setup({ subscribe: { queueSize: 0 } }),
      /queueSize/,
    );
    assert.throws(
      () => setup({ subscribe: { onOverflow: 1 as Loose } }),
      /onOverflow option: expected a function/,
    );
  });

  await t.step("hook that is not a function", async () => {
    await using hooked = setup();
    assert.throws(
      () => hooked.client.subscribe(KEY, { onStateChange: 5 as Loose }),
      /onStateChange option: expected a function, got number/,
    );
    assert.equal(hooked.server.requests.length, 0);
  });
  assert.equal(env.server.requests.length, 0);
});

Deno.test("per-call options send nothing", async (t) => {
  await using env = setup();
  const client = env.client as Loose;
  const bad: [string, unknown, RegExp][] = [
    ["null", null, /expected an object, got null/],
    ["string", "fast", /expected an object, got string/],
    ["number", 1, /expected an object, got number/],
    ["signal object", { signal: { aborted: false } }, /AbortSignal/],
    ["signal string", { signal: "abort" }, /AbortSignal/],
  ];
  for (const [name, options, message] of bad) {
    await t.step(name, async () => {
      for (
        const call of [
          () => client.get(KEY, options),
          () => client.delete(KEY, options),
          () => client.has(KEY, options),
          () => client.list("", options),
          () => client.history(KEY, options),
          () => client.ping(options),
          () => client.setJson(KEY, 1, options),
        ]
      ) {
        await assert.rejects(async () => await call(), message);
      }
    });
  }

  await t.step("set options of the wrong type", async () => {
    await assert.rejects(client.set(KEY, "v", null), /call options/);
    await assert.rejects(client.set(KEY, "v", { format: 5 }), /format/);
    await assert.rejects(
      client.set(KEY, "v", { format: Symbol("json") }),
      /Invalid format symbol/,
    );
  });

  await t.step("list filter of the wrong type", async () => {
    await assert.rejects(client.list("", { filter: 1 }), /Invalid filter 1/);
    await assert.rejects(client.list("", { filter: "ALL" }), /"ALL"/);
  });

  await t.step("already aborted signal", async () => {
    const controller = new AbortController();
    controller.abort(new Error("caller gave up"));
    const signal = controller.signal;
    await assert.rejects(client.get(KEY, { signal }), /caller gave up/);
    await assert.rejects(client.set(KEY, "v", { signal }), /caller gave up/);
    await assert.rejects(client.list("", { signal }), /caller gave up/);
  });
  assert.equal(env.server.requests.length, 0);
});

Deno.test("values of the wrong type send nothing", async (t) => {
  await using env = setup();
  const client = env.client as Loose;
  const values: [string, unknown][] = [
    ["undefined", undefined],
    ["symbol", Symbol("v")],
    ["bigint", 1n],
    ["ArrayBuffer", new ArrayBuffer(4)],
    ["DataView", new DataView(new ArrayBuffer(4))],
    ["Uint16Array", new Uint16Array(2)],
    ["Blob", new Blob(["v"])],
    ["object", { value: "v" }],
  ];
  for (const [name, value] of values) {
    await t.step(name, async () => {
      await assert.rejects(
        client.set(KEY, value),
        /expected a string or Uint8Array/,
      );
    });
  }
  await t.step("setJson symbol", async () => {
    await assert.rejects(client.setJson(KEY, Symbol("v")), /JSON has no form/);
  });
  assert.equal(env.server.requests.length, 0);
});

Deno.test("header and token values", async (t) => {
  const badHeaders: [string, HeadersInit][] = [
    ["CR LF in a value", { "x-request-id": "a\r\nInjected: 1" }],
    ["LF in a value", { "x-request-id": "a\nb" }],
    ["NUL in a value", { "x-request-id": "a\u0000b" }],
    ["non-Latin-1 value", { "x-request-id": "ключ" }],
    ["colon in a name", { "x-a:b": "v" }],
    ["empty name", { "": "v" }],
    ["pair of the wrong length", [["x-a"]] as unknown as HeadersInit],
  ];
  for (const [name, headers] of badHeaders) {
    await t.step(name, () => {
      assert.throws(
        () => new Client("http://stash.test", { headers }),
        (error: Error) =>
          error instanceof TypeError &&
          /Invalid headers option/.test(error.message),
      );
    });
  }

  await t.step("surrounding whitespace is trimmed", async () => {
    await using env = setup({ headers: { "x-request-id": "  req-1 \r\n" } });
    env.server.put(KEY, "v");
    await env.client.get(KEY);
    assert.equal(env.server.requests[0]?.headers["x-request-id"], "req-1");
  });

  await t.step("token replaces an Authorization header", async () => {
    await using env = setup({
      token: "tok-1",
      headers: { Authorization: "Basic abc" },
    });
    env.server.put(KEY, "v");
    await env.client.get(KEY);
    assert.equal(
      env.server.requests[0]?.headers.authorization,
      "Bearer tok-1",
    );
  });

  const tokens: [string, unknown][] = [
    ["null", null],
    ["symbol", Symbol("t")],
    ["object", { token: "t" }],
    ["lone surrogate", "tok\uD800"],
    ["DEL", "tok\u007F"],
    ["trailing newline", "tok\n"],
  ];
  for (const [name, token] of tokens) {
    await t.step(`token ${name}`, () => {
      assert.throws(
        () => new Client("http://stash.test", { token: token as string }),
        (error: Error) =>
          error instanceof TypeError && /token option/.test(error.message),
      );
    });
  }

  await t.step("passphrase of the wrong kind", () => {
    for (const zkKey of [null, Symbol("k"), 10n, ["a".repeat(16)]] as Loose[]) {
      assert.throws(
        () => new Client("http://stash.test", { zkKey }),
        /zkKey option: expected a string/,
      );
    }
    // Whitespace and control characters count as bytes: only the length
    // is checked.
    new Client("http://stash.test", { zkKey: " ".repeat(16) });
    new Client("http://stash.test", { zkKey: "\u0001".repeat(16) });
  });
});

Deno.test("base URLs of the wrong kind", async (t) => {
  const bad: [string, unknown][] = [
    ["whitespace", "   "],
    ["no host", "http://"],
    ["unclosed IPv6", "http://[::1"],
    ["port out of range", "http://127.0.0.1:70000"],
    ["object with href", { href: "http://127.0.0.1" }],
    ["symbol", Symbol("url")],
    ["websocket scheme", "ws://127.0.0.1"],
    ["data URL", "data:text/plain,x"],
  ];
  for (const [name, value] of bad) {
    await t.step(name, () => {
      assert.throws(() => new Client(value as string), TypeError);
    });
  }

  await t.step("URL parser strips tabs and newlines", () => {
    // WHATWG URL parsing removes ASCII tab and newline anywhere and trims
    // surrounding spaces, so these reach the same origin.
    assert.equal(
      new Client(" http://127.0.0.1:1/a\n ").baseUrl,
      "http://127.0.0.1:1/a",
    );
    assert.equal(
      new Client("http://127.0.\t0.1:1").baseUrl,
      "http://127.0.0.1:1",
    );
  });
});

Deno.test("broken fetch functions", async (t) => {
  await t.step("throws synchronously", async () => {
    let calls = 0;
    const client = new Client("http://stash.test", {
      retries: 2,
      sleep: () => Promise.resolve(),
      fetch: () => {
        calls++;
        throw new TypeError("fetch exploded");
      },
    });
    const error = await client.get(KEY).catch((e) => e);
    // Any rejection from fetch counts as a network failure, like the
    // TypeError that fetch raises for a refused connection.
    assert.ok(error instanceof ConnectionError, String(error));
    assert.match(error.message, /"app\/config".*fetch exploded/);
    assert.equal(calls, 3);
    await client.close();
  });

  for (
    const [name, value] of [
      ["undefined", undefined],
      ["null", null],
      ["a string", "200 OK"],
      ["a plain object", { ok: true }],
    ] as const
  ) {
    await t.step(`resolves to ${name}`, async () => {
      let calls = 0;
      const client = new Client("http://stash.test", {
        retries: 2,
        sleep: () => Promise.resolve(),
        fetch: () => {
          calls++;
          return Promise.resolve(value as unknown as Response);
        },
      });
      const error = await client.get(KEY).catch((e) => e);
      assert.ok(error instanceof StashError, String(error));
      assert.ok(!(error instanceof ConnectionError));
      assert.match(error.message, /instead of a Response/);
      assert.match(error.message, /"app\/config"/);
      assert.equal(calls, 1, "not retried");
      await client.close();
    });
  }

  await t.step("Response whose body errors", async () => {
    let calls = 0;
    const client = new Client("http://stash.test", {
      retries: 2,
      sleep: () => Promise.resolve(),
      fetch: () => {
        calls++;
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode("par"));
            controller.error(new Error("body broke"));
          },
        });
        return Promise.resolve(new Response(body, { status: 200 }));
      },
    });
    const error = await client.get(KEY).catch((e) => e);
    assert.ok(error instanceof ConnectionError, String(error));
    assert.match(error.message, /body broke/);
    assert.equal(calls, 3);
    await client.close();
  });
});

Deno.test("very long keys", async (t) => {
  const huge = "k".repeat(1024 * 1024);

  await t.step("1 MB key is sent as is", async () => {
    // The client sets no key length limit: the server and proxies limit
    // the URL, and their response comes back as a ResponseError.
    await using env = setup();
    const result = await env.client.set(huge, "v");
    assert.equal(result.key.length, huge.length);
    assert.equal(await env.client.get(huge), "v");
    assert.equal(
      env.server.requests[0]?.url.length,
      "/kv/".length + huge.length,
    );
  });

  await t.step("414 from a proxy is not retried", async () => {
    await using env = setup();
    env.server.faults.add({
      action: {
        type: "respond",
        status: 414,
        headers: { "Content-Type": "text/html" },
        body: "<html><head><title>414 Request-URI Too Large</title></head>",
      },
    });
    const error = await env.client.get(huge).catch((e) => e);
    assert.ok(error instanceof ResponseError, String(error));
    assert.equal(error.status, 414);
    assert.equal(error.key, huge);
    assert.match(error.message, /\(1048576 characters\)/);
    assert.ok(error.message.length < 500, "message is bounded");
    assert.equal(env.server.requests.length, 1);
  });

  await t.step("invalid huge key has a bounded message", async () => {
    await using env = setup();
    const error = await env.client.get(`${huge}\n`).catch((e) => e);
    assert.ok(error instanceof TypeError);
    assert.match(error.message, /control characters/);
    assert.ok(error.message.length < 500, "message is bounded");
    assert.equal(env.server.requests.length, 0);
  });

  await t.step("timeout message of a huge key is bounded", async () => {
    await using env = setup({ timeout: 50, retries: 0 });
    env.server.faults.add({ action: { type: "delay", ms: 1000 } });
    const error = await env.client.get(huge).catch((e) => e);
    assert.match(error.message, /timed out/);
    assert.ok(error.message.length < 500, "message is bounded");
  });
});

Deno.test("non-UTF-8 values", async (t) => {
  await using env = setup();
  const bytes = new Uint8Array([0x66, 0xff, 0xfe, 0x80, 0x00]);

  await t.step("bytes round-trip exactly", async () => {
    await env.client.set(KEY, bytes);
    assert.deepEqual(await env.client.getBytes(KEY), bytes);
  });

  await t.step("get as text names the key and getBytes", async () => {
    const error = await env.client.get(KEY).catch((e) => e);
    assert.ok(error instanceof StashError);
    assert.match(error.message, /"app\/config" is not valid UTF-8/);
    assert.match(error.message, /getBytes\(\)/);
  });

  await t.step("getJson of invalid JSON names the key", async () => {
    await env.client.set(KEY, "{not json", "json");
    const error = await env.client.getJson(KEY).catch((e) => e);
    assert.ok(error instanceof StashError);
    assert.match(error.message, /"app\/config" is not valid JSON/);
  });

  await t.step("lone surrogates in a prefix or JSON value", async () => {
    const before = env.server.requests.length;
    await assert.rejects(env.client.list("a\uDC00"), /lone UTF-16 surrogate/);
    assert.equal(env.server.requests.length, before);
    // JSON.stringify escapes a lone surrogate, so setJson stores `"a\ud800"`.
    await env.client.setJson(KEY, "a\uD800");
    assert.equal(
      new TextDecoder().decode(env.server.getRaw(KEY)),
      '"a\\ud800"',
    );
  });
});
