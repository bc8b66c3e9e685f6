// Replays HTTP exchanges recorded from a real Stash v0.13.0 server through
// an injected fetch: each client call must send the recorded request, and
// the client must make sense of the recorded response bytes.

import assert from "node:assert/strict";
import {
  Client,
  type ClientOptions,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitError,
  ResponseError,
  StashError,
  UnauthorizedError,
} from "../mod.ts";

interface Exchange {
  note: string;
  server: string;
  request: {
    method: string;
    path: string;
    headers: Record<string, string>;
    body?: string;
  };
  response: {
    status: number;
    headers: Record<string, string>;
    body: string;
  };
}

interface Recording {
  tokens: { admin: string; readonly: string };
  exchanges: Exchange[];
}

const recording: Recording = JSON.parse(
  await Deno.readTextFile(
    new URL("./fixtures/stash-v0.13.0-exchanges.json", import.meta.url),
  ),
);
const { admin, readonly } = recording.tokens;
const PLACEHOLDER_REGEXP = /^<(\d+) characters>$/;
const CUT_REGEXP = /\.\.\. \(\d+ characters\)$/;

function exchange(index: number): Exchange {
  const found = recording.exchanges[index];
  assert.ok(found, `exchange ${index} exists`);
  return found;
}

function expandBody(body: string): string {
  const match = PLACEHOLDER_REGEXP.exec(body);
  return match === null ? body : "x".repeat(Number(match[1]));
}

/** A fetch that checks each request against the next expected exchange. */
class Replay {
  readonly #queue: Exchange[] = [];
  sent = 0;

  expect(...indexes: number[]): this {
    for (const index of indexes) this.#queue.push(exchange(index));
    return this;
  }

  get pending(): number {
    return this.#queue.length;
  }

  fetch = async (input: URL | Request | string, init?: RequestInit) => {
    const next = this.#queue.shift();
    assert.ok(next, `unexpected request ${init?.method} ${String(input)}`);
    this.sent++;
    const url = new URL(String(input));
    const { request, response } = next;
    assert.equal(init?.method, request.method, next.note);
    assert.equal(url.pathname + url.search, request.path, next.note);
    const headers = new Headers(init?.headers);
    assert.equal(
      headers.get("authorization"),
      request.headers.authorization ?? null,
      `${next.note}: authorization header`,
    );
    for (const [name, value] of Object.entries(request.headers)) {
      assert.equal(headers.get(name), value, `${next.note}: header ${name}`);
    }
    if (request.body !== undefined && request.body !== "") {
      const sent = new TextDecoder().decode(init?.body as Uint8Array);
      assert.equal(sent, expandBody(request.body), `${next.note}: body`);
    }
    const status = response.status;
    const nullBody = request.method === "HEAD" || status === 204 ||
      status === 304;
    return await Promise.resolve(
      new Response(nullBody ? null : response.body, {
        status,
        headers: response.headers,
      }),
    );
  };
}

function client(replay: Replay, options: ClientOptions = {}): Client {
  return new Client("http://stash.test", {
    fetch: replay.fetch,
    retries: 0,
    ...options,
  });
}

Deno.test("replayed plain server exchanges", async (t) => {
  await t.step("ping answers pong", async () => {
    const replay = new Replay().expect(0);
    assert.equal(await client(replay).ping(), true);
    assert.equal(replay.pending, 0);
  });

  await t.step("set, get, head and overwrite", async () => {
    const replay = new Replay().expect(1, 2, 3, 4);
    const stash = client(replay);
    const created = await stash.set("app/config", '{"debug": true}', "json");
    assert.equal(created.key, "app/config");
    assert.equal(created.created, undefined);
    assert.equal(await stash.get("app/config"), '{"debug": true}');
    assert.equal(await stash.has("app/config"), true);
    await stash.set("app/config", '{"debug": false}', { format: "json" });
    assert.equal(replay.pending, 0);
  });

  await t.step("every format stored and read", async () => {
    const formats = ["yaml", "xml", "toml", "ini", "hcl", "shell", "text"];
    const replay = new Replay();
    for (let index = 6; index <= 19; index++) replay.expect(index);
    const stash = client(replay);
    for (const format of formats) {
      await stash.set(`fmt/${format}`, "x", format as "text");
      assert.equal(await stash.get(`fmt/${format}`), "x");
    }
    assert.equal(replay.pending, 0);
  });

  await t.step(
    "formats the server would store as text are rejected",
    async () => {
      const replay = new Replay();
      const stash = client(replay);
      for (const format of ["JSON", "bogus"]) {
        await assert.rejects(
          stash.set(`fmt/${format}`, "x", format as "text"),
          (error: Error) =>
            error instanceof TypeError && error.message.includes(format),
        );
      }
      assert.equal(replay.sent, 0);
    },
  );

  await t.step("empty value round trip", async () => {
    const replay = new Replay().expect(24, 25);
    const stash = client(replay);
    await stash.set("app/empty", "");
    assert.equal(await stash.get("app/empty"), "");
  });

  await t.step("list cut by the recorder is a clear error", async () => {
    const replay = new Replay().expect(26);
    assert.ok(CUT_REGEXP.test(exchange(26).response.body));
    await assert.rejects(
      client(replay).list(),
      (error: Error) =>
        error instanceof StashError && error.message.includes("not valid JSON"),
    );
  });

  await t.step("list by prefix with no match is empty", async () => {
    const replay = new Replay().expect(28);
    assert.deepEqual(await client(replay).list("nothing-here"), []);
  });

  await t.step("missing key is NotFoundError", async () => {
    const replay = new Replay().expect(30);
    const error = await client(replay).get("app/missing").catch((e) => e);
    assert.ok(error instanceof NotFoundError);
    assert.equal(error.key, "app/missing");
    assert.equal(error.status, 404);
    assert.equal(error.serverMessage, "key not found");
    assert.match(error.message, /"app\/missing"/);
  });

  await t.step("delete, then delete again", async () => {
    const replay = new Replay().expect(31, 32);
    const stash = client(replay);
    await stash.delete("app/empty");
    await assert.rejects(stash.delete("app/empty"), NotFoundError);
  });

  await t.step("empty key is rejected before sending", async () => {
    const replay = new Replay();
    await assert.rejects(client(replay).set("", "x"), TypeError);
    assert.equal(replay.sent, 0);
  });

  await t.step("key with a space is stored with an underscore", async () => {
    const replay = new Replay().expect(36, 37);
    const stash = client(replay);
    const result = await stash.set("with space", "sp");
    assert.equal(result.key, "with_space");
    assert.equal(await stash.get(result.key), "sp");
  });

  await t.step("path key encoding sends literal slashes", async () => {
    const replay = new Replay().expect(38);
    const stash = client(replay, { keyEncoding: "path" });
    assert.equal(await stash.get("app/config"), '{"debug": false}');
  });

  await t.step("key under history/ is an ordinary key", async () => {
    const replay = new Replay().expect(39, 40);
    const stash = client(replay);
    await stash.set("history/x", "h");
    assert.equal(await stash.get("history/x"), "h");
  });

  await t.step("history without git is a 503 ResponseError", async () => {
    const replay = new Replay().expect(41, 51);
    const stash = client(replay);
    for (const key of ["x", "app/config"]) {
      const error = await stash.history(key).catch((e) => e);
      assert.ok(error instanceof ResponseError);
      assert.equal(error.status, 503);
      assert.equal(error.serverMessage, "git integration not enabled");
      assert.match(error.message, /without git/);
    }
  });

  await t.step("key ending in ping reads its value", async () => {
    const replay = new Replay().expect(42, 44);
    const stash = client(replay);
    await stash.set("app/ping", "not pong");
    assert.equal(await stash.get("app/ping"), "not pong");
  });

  await t.step("body limit boundary", async () => {
    const replay = new Replay().expect(45, 46);
    const stash = client(replay, { maxBodySize: 2 * 1024 * 1024 });
    await stash.set("big/ok", "x".repeat(1_048_576));
    const error = await stash.set("big/too", "x".repeat(1_048_577)).catch((
      e,
    ) => e);
    assert.ok(error instanceof PayloadTooLargeError);
    assert.equal(error.status, 413);
    assert.equal(error.key, "big/too");
  });

  await t.step("body over maxBodySize is not sent", async () => {
    const replay = new Replay();
    const error = await client(replay).set("big/too", "x".repeat(1_048_577))
      .catch((e) => e);
    assert.ok(error instanceof PayloadTooLargeError);
    assert.equal(error.size, 1_048_577);
    assert.equal(error.limit, 1_048_576);
    assert.equal(replay.sent, 0);
  });
});

Deno.test("replayed git server exchanges", async (t) => {
  await t.step("history entries decode", async () => {
    const replay = new Replay().expect(47, 48, 49, 50);
    const stash = client(replay);
    await stash.set("app/h", "one");
    await stash.set("app/h", "two");
    const entries = await stash.history("app/h");
    assert.equal(entries.length, 2);
    const [newest, oldest] = entries;
    assert.ok(newest);
    assert.ok(oldest);
    assert.equal(new TextDecoder().decode(newest.value), "two");
    assert.equal(new TextDecoder().decode(oldest.value), "one");
    assert.equal(newest.operation, "set");
    assert.equal(newest.author, "stash");
    assert.equal(newest.hash, "cbb915a");
    assert.equal(newest.timestamp.toISOString(), "2026-12-03T22:49:44.000Z");
    assert.deepEqual(await stash.history("app/never"), []);
  });
});

Deno.test("replayed auth server exchanges", async (t) => {
  await t.step(
    "JSON 401 on an empty visible list is an empty list",
    async () => {
      const replay = new Replay().expect(52);
      assert.deepEqual(await client(replay, { token: admin }).list(), []);
    },
  );

  await t.step("missing and wrong tokens are UnauthorizedError", async () => {
    const replay = new Replay().expect(53, 54);
    const error = await client(replay).get("app/x").catch((e) => e);
    assert.ok(error instanceof UnauthorizedError);
    assert.equal(error.status, 401);
    assert.equal(error.serverMessage, "Unauthorized");
    const wrong = await client(replay, { token: "wrong-token" }).get("app/x")
      .catch((e) => e);
    assert.ok(wrong instanceof UnauthorizedError);
    assert.ok(!wrong.message.includes("wrong-token"));
  });

  await t.step("read-only token outcomes", async () => {
    const replay = new Replay().expect(57, 58, 59, 60, 61, 62, 63);
    const writer = client(replay, { token: admin });
    const reader = client(replay, { token: readonly });
    await writer.set("app/x", "v");
    assert.equal(await reader.get("app/x"), "v");
    const forbidden = await reader.set("app/x", "w").catch((e) => e);
    assert.ok(forbidden instanceof ForbiddenError);
    assert.equal(forbidden.key, "app/x");
    assert.ok(!forbidden.message.includes(readonly));
    await assert.rejects(reader.get("app/nope"), NotFoundError);
    await assert.rejects(reader.get("other/k"), ForbiddenError);
    const listed = await reader.list();
    assert.equal(listed.length, 1);
    assert.equal(listed[0]?.key, "app/x");
    assert.equal(listed[0]?.size, 1);
    assert.equal(listed[0]?.format, "text");
    assert.equal(listed[0]?.secret, undefined);
    assert.equal(listed[0]?.zkEncrypted, undefined);
    assert.equal(
      listed[0]?.createdAt.toISOString(),
      "2026-12-03T22:49:44.617Z",
    );
    assert.equal(await client(replay).ping(), true);
  });
});

Deno.test("replayed rate limit exchanges", async (t) => {
  await t.step("429 without retries is RateLimitError", async () => {
    const replay = new Replay().expect(64, 65, 66, 67, 68, 69);
    const stash = client(replay);
    await stash.set("rl", "v");
    for (let request = 0; request < 4; request++) {
      assert.equal(await stash.get("rl"), "v");
    }
    const error = await stash.get("rl").catch((e) => e);
    assert.ok(error instanceof RateLimitError);
    assert.equal(error.status, 429);
    assert.equal(error.limit, 5);
    assert.equal(error.remaining, 0);
    assert.equal(error.reset, 1);
    assert.equal(error.retryAfter, undefined);
    assert.equal(
      error.serverMessage,
      "You have reached maximum request limit.",
    );
  });

  await t.step("429 retries wait for the reset window", async () => {
    const replay = new Replay().expect(69, 70, 71);
    const delays: number[] = [];
    const stash = client(replay, {
      retries: 2,
      random: () => 0.5,
      sleep: (ms) => {
        delays.push(ms);
        return Promise.resolve();
      },
    });
    await assert.rejects(stash.get("rl"), RateLimitError);
    assert.deepEqual(delays, [1050, 1050]);
    assert.equal(replay.pending, 0);
  });
});
