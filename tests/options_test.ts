import assert from "node:assert/strict";
import { inspect } from "node:util";
import {
  Client,
  type ClientOptions,
  ClosedError,
  ConnectionError,
  ForbiddenError,
  TimeoutError,
  UnauthorizedError,
} from "../mod.ts";
import { errorFromResponse } from "../src/errors.ts";

const TOKEN = "tok-3b1f9c0e5a7d4e21";
const PASSPHRASE = "correct horse battery staple";

function noFetch(): Promise<Response> {
  throw new Error("nothing may be sent");
}

Deno.test("base URL validation", async (t) => {
  const bad: [unknown, RegExp][] = [
    ["ftp://host", /scheme must be http or https/],
    ["file:///etc/passwd", /scheme must be http or https/],
    ["javascript:alert(1)", /scheme must be http or https/],
    ["not a url", /expected an absolute http or https URL/],
    ["", /expected an absolute/],
    ["/relative/path", /expected an absolute/],
    ["http://user:pass@host", /contains credentials/],
    ["http://host/?q=1", /query or fragment/],
    ["http://host/#x", /query or fragment/],
    [42, /expected a string or URL, got number/],
    [null, /got null/],
    [undefined, /got undefined/],
  ];
  for (const [value, message] of bad) {
    await t.step(String(value), () => {
      assert.throws(
        () => new Client(value as string),
        (error: Error) =>
          error instanceof TypeError && message.test(error.message),
      );
    });
  }

  await t.step("credentials are not echoed", () => {
    assert.throws(
      () => new Client("http://user:hunter2@host"),
      (error: Error) => !error.message.includes("hunter2"),
    );
  });

  await t.step("trailing slashes and a base path", () => {
    assert.equal(new Client("http://host/").baseUrl, "http://host");
    assert.equal(new Client("http://host///").baseUrl, "http://host");
    assert.equal(
      new Client("https://host/stash/").baseUrl,
      "https://host/stash",
    );
    assert.equal(
      new Client(new URL("http://127.0.0.1:8080/a/b")).baseUrl,
      "http://127.0.0.1:8080/a/b",
    );
  });
});

Deno.test("client option validation", async (t) => {
  const bad: [ClientOptions, RegExp, ErrorConstructor][] = [
    [{ timeout: 0 }, /timeout/, RangeError],
    [{ timeout: -1 }, /timeout/, RangeError],
    [{ timeout: Number.NaN }, /timeout/, RangeError],
    [{ timeout: Infinity }, /timeout/, RangeError],
    [{ timeout: "30" as unknown as number }, /timeout/, RangeError],
    [{ retries: -1 }, /retries/, RangeError],
    [{ retries: 1.5 }, /retries/, RangeError],
    [{ retryDelay: -5 }, /retryDelay/, RangeError],
    [{ maxRetryDelay: Number.NaN }, /maxRetryDelay/, RangeError],
    [{ maxBodySize: 0 }, /maxBodySize/, RangeError],
    [{ maxRedirects: -1 }, /maxRedirects/, RangeError],
    [{ token: "" }, /token/, TypeError],
    [{ token: "has space" }, /token/, TypeError],
    [{ token: "line\nbreak" }, /token/, TypeError],
    [{ token: "tab\there" }, /token/, TypeError],
    [{ token: "ünïcode" }, /token/, TypeError],
    [
      { token: 123 as unknown as string },
      /expected a string, got number/,
      TypeError,
    ],
    [{ zkKey: "short" }, /at least 16 bytes/, TypeError],
    [{ zkKey: "" }, /got 0 bytes/, TypeError],
    [
      { zkKey: 1234567890123456 as unknown as string },
      /expected a string/,
      TypeError,
    ],
    [{ zkKey: "\uD800".repeat(16) }, /zkKey/, TypeError],
    [{ requireEncryption: true }, /needs the zkKey option/, TypeError],
    [
      { requireEncryption: "yes" as unknown as boolean },
      /expected a boolean/,
      TypeError,
    ],
    [{ keyEncoding: "raw" as "path" }, /keyEncoding/, TypeError],
    [
      { fetch: "fetch" as unknown as typeof fetch },
      /fetch option: expected a function/,
      TypeError,
    ],
    [{ sleep: 5 as unknown as () => Promise<void> }, /sleep/, TypeError],
    [{ headers: { "bad header": "x" } }, /header/i, TypeError],
  ];
  for (const [options, message, type] of bad) {
    await t.step(JSON.stringify(options) ?? "options", () => {
      assert.throws(
        () => new Client("http://host", options),
        (error: Error) => error instanceof type && message.test(error.message),
      );
    });
  }

  await t.step("options must be an object", () => {
    assert.throws(
      () => new Client("http://host", null as unknown as ClientOptions),
      /expected an object, got null/,
    );
  });

  await t.step("passphrase length counts UTF-8 bytes", () => {
    // Six CJK characters are 18 bytes: accepted.
    new Client("http://host", { zkKey: "秘密の合言葉" });
    assert.throws(
      () => new Client("http://host", { zkKey: "秘密の合" }),
      /bytes, not characters/,
    );
  });

  await t.step("rejected token and passphrase are not echoed", () => {
    for (const options of [{ token: "sekrit value" }, { zkKey: "sekrit" }]) {
      assert.throws(
        () => new Client("http://host", options),
        (error: Error) => !error.message.includes("sekrit"),
      );
    }
  });
});

Deno.test("call argument validation", async (t) => {
  const client = new Client("http://host", { fetch: noFetch });
  const calls: [string, () => Promise<unknown>, RegExp][] = [
    ["get number key", () => client.get(1 as unknown as string), /Invalid key/],
    [
      "set number value",
      () => client.set("k", 5 as unknown as string),
      /expected a string or Uint8Array, got number/,
    ],
    [
      "set null value",
      () => client.set("k", null as unknown as string),
      /got null/,
    ],
    [
      "set array value",
      () => client.set("k", [1] as unknown as string),
      /got object/,
    ],
    [
      "set lone surrogate",
      () => client.set("k", "a\uDC00"),
      /lone UTF-16 surrogate/,
    ],
    [
      "set bad format",
      () => client.set("k", "v", "yml" as "yaml"),
      /Invalid format "yml"/,
    ],
    [
      "set format case",
      () => client.set("k", "v", { format: "JSON" as "json" }),
      /Invalid format "JSON"/,
    ],
    [
      "set options type",
      () => client.set("k", "v", 5 as unknown as "json"),
      /Invalid format|call options/,
    ],
    [
      "setJson bigint",
      () => client.setJson("k", 1n),
      /cannot be serialised as JSON/,
    ],
    [
      "setJson function",
      () => client.setJson("k", () => 1),
      /JSON has no form for function/,
    ],
    [
      "setJson undefined",
      () => client.setJson("k", undefined),
      /JSON has no form/,
    ],
    [
      "list filter",
      () => client.list("", { filter: "nope" as "all" }),
      /Invalid filter "nope"/,
    ],
    [
      "list prefix type",
      () => client.list(3 as unknown as string),
      /Invalid prefix/,
    ],
    [
      "signal type",
      () => client.get("k", { signal: "x" as unknown as AbortSignal }),
      /AbortSignal/,
    ],
    [
      "options type",
      () => client.get("k", 7 as unknown as Record<string, never>),
      /call options/,
    ],
    ["delete empty", () => client.delete(" "), /empty/],
    ["has dot", () => client.has(".."), /"\.\."/],
    ["info control", () => client.info("a\tb"), /control characters/],
    ["history empty", () => client.history("/"), /empty/],
  ];
  for (const [name, call, message] of calls) {
    await t.step(name, async () => {
      await assert.rejects(
        call(),
        (error: Error) =>
          (error instanceof TypeError || error instanceof RangeError) &&
          message.test(error.message),
      );
    });
  }

  await t.step("setJson cycle", async () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    await assert.rejects(client.setJson("k", cycle), /cannot be serialised/);
  });
});

Deno.test("secrets never appear in output", async (t) => {
  const client = new Client("http://host", {
    token: TOKEN,
    zkKey: PASSPHRASE,
    fetch: () => Promise.reject(new TypeError("refused")),
    retries: 0,
  });

  await t.step("client inspection, string and JSON", () => {
    for (
      const text of [
        Deno.inspect(client, { depth: 10, showHidden: true }),
        inspect(client, { depth: 10, showHidden: true }),
        String(client),
        JSON.stringify(client),
      ]
    ) {
      assert.ok(!text.includes(TOKEN), text);
      assert.ok(!text.includes(PASSPHRASE), text);
      assert.ok(text.includes("http://host"), text);
    }
  });

  await t.step("errors of every kind", async () => {
    const errors: Error[] = [];
    errors.push(await client.get("k").catch((e) => e));
    errors.push(await client.set("k", "v").catch((e) => e));
    for (const status of [401, 403, 404, 413, 429, 500]) {
      errors.push(errorFromResponse({
        status,
        headers: new Headers(),
        body: new TextEncoder().encode("body"),
      }, { key: "k", method: "GET" }));
    }
    for (const error of errors) {
      for (
        const text of [
          error.message,
          String(error),
          JSON.stringify(error),
          Deno.inspect(error, { depth: 10 }),
          inspect(error, { depth: 10 }),
          error.stack ?? "",
        ]
      ) {
        assert.ok(!text.includes(TOKEN), text);
        assert.ok(!text.includes(PASSPHRASE), text);
      }
    }
    assert.ok(errors[0] instanceof ConnectionError);
  });
});

Deno.test("closed client rejects every call", async () => {
  const client = new Client("http://host", { fetch: noFetch });
  await client.close();
  await client.close();
  assert.equal(client.closed, true);
  const calls: (() => Promise<unknown>)[] = [
    () => client.get("k"),
    () => client.getBytes("k"),
    () => client.getOrDefault("k", "x"),
    () => client.getJson("k"),
    () => client.set("k", "v"),
    () => client.setJson("k", {}),
    () => client.delete("k"),
    () => client.list(),
    () => client.info("k"),
    () => client.has("k"),
    () => client.ping(),
    () => client.history("k"),
    async () => {
      for await (const _ of client) break;
    },
  ];
  for (const call of calls) {
    await assert.rejects(call(), ClosedError);
  }
});

Deno.test("using disposes the client", async () => {
  let outer: Client | undefined;
  {
    await using client = new Client("http://host", { fetch: noFetch });
    outer = client;
  }
  assert.equal(outer.closed, true);
  {
    using client = new Client("http://host", { fetch: noFetch });
    outer = client;
  }
  assert.equal(outer.closed, true);
});

Deno.test("error classes", () => {
  const forbidden = errorFromResponse({
    status: 403,
    headers: new Headers({
      "x-request-id": "req-1",
      "content-type": "text/plain",
    }),
    body: new TextEncoder().encode("Forbidden\n"),
  }, { key: "a/b", method: "PUT" });
  assert.ok(forbidden instanceof ForbiddenError);
  assert.equal(forbidden.name, "ForbiddenError");
  assert.equal(forbidden.requestId, "req-1");
  assert.equal(forbidden.serverMessage, "Forbidden");
  assert.equal(forbidden.method, "PUT");
  assert.match(forbidden.message, /"a\/b"/);
  const unauthorized = errorFromResponse({
    status: 401,
    headers: new Headers(),
    body: new Uint8Array(),
  }, { method: "GET", path: "/kv/" });
  assert.ok(unauthorized instanceof UnauthorizedError);
  assert.match(unauthorized.message, /GET \/kv\//);
  const timeout = new TimeoutError("t", { timeout: 5 });
  assert.equal(timeout.name, "TimeoutError");
  assert.equal(timeout.timeout, 5);
});
