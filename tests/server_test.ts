import assert from "node:assert/strict";
import {
  createStashServer,
  type StashServer,
  type StashServerOptions,
  type TokenConfig,
} from "../testing.ts";
import { cleanPath } from "../src/testing/server.ts";
import { formatNanos, normalizeKey } from "../src/testing/store.ts";

const BASE = "http://stash.test";
const JSON_TYPE = "application/json; charset=utf-8";
const TEXT_TYPE = "text/plain; charset=utf-8";
const NANO_TIME_REGEXP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z$/;
const SECOND_TIME_REGEXP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

interface CallOptions {
  method?: string;
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

async function call(
  server: StashServer,
  path: string,
  options: CallOptions = {},
): Promise<Reply> {
  const init: RequestInit = { method: options.method ?? "GET" };
  if (options.body !== undefined) init.body = options.body as BodyInit;
  if (options.headers) init.headers = options.headers;
  const response = await server.fetch(BASE + path, init);
  return {
    status: response.status,
    headers: response.headers,
    text: await response.text(),
  };
}

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** Runs `body` with a fresh server and closes it afterwards. */
async function withServer(
  options: StashServerOptions,
  body: (server: StashServer) => Promise<void>,
): Promise<void> {
  const server = createStashServer(options);
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

/** Settles after pending microtasks and one timer turn. */
function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

const decoder = new TextDecoder();

async function readChunk(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<string | undefined> {
  const { done, value } = await reader.read();
  return done ? undefined : decoder.decode(value);
}

async function readAll(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<string> {
  let text = "";
  for (let chunk = await readChunk(reader); chunk !== undefined;) {
    text += chunk;
    chunk = await readChunk(reader);
  }
  return text;
}

Deno.test("key endpoints on newest", async (t) => {
  await withServer({}, async (server) => {
    await t.step("PUT creates with 201 and overwrites with 200", async () => {
      const created = await call(server, "/kv/app%2Fconfig", {
        method: "PUT",
        body: '{"a":1}',
        headers: { "x-stash-format": "json" },
      });
      assert.equal(created.status, 201);
      assert.equal(created.text, "");
      assert.equal(created.headers.get("content-type"), null);
      const updated = await call(server, "/kv/app%2Fconfig", {
        method: "PUT",
        body: '{"a":2}',
        headers: { "x-stash-format": "json" },
      });
      assert.equal(updated.status, 200);
    });

    await t.step("GET returns bytes with format headers", async () => {
      const read = await call(server, "/kv/app%2Fconfig");
      assert.equal(read.status, 200);
      assert.equal(read.text, '{"a":2}');
      assert.equal(read.headers.get("content-type"), "application/json");
      assert.equal(read.headers.get("content-length"), "7");
      assert.equal(read.headers.get("content-security-policy"), "sandbox");
      assert.equal(read.headers.get("x-content-type-options"), "nosniff");
    });

    await t.step("HEAD returns headers without a body", async () => {
      const head = await call(server, "/kv/app%2Fconfig", { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.text, "");
      assert.equal(head.headers.get("content-length"), "7");
    });

    await t.step("binary and empty values round-trip", async () => {
      const bytes = new Uint8Array([0, 255, 10, 13, 128]);
      await call(server, "/kv/bin", { method: "PUT", body: bytes });
      const response = await server.fetch(`${BASE}/kv/bin`);
      assert.deepEqual(new Uint8Array(await response.arrayBuffer()), bytes);
      assert.deepEqual(server.getRaw("bin"), bytes);
      await call(server, "/kv/empty", { method: "PUT", body: "" });
      const empty = await call(server, "/kv/empty");
      assert.equal(empty.status, 200);
      assert.equal(empty.headers.get("content-length"), "0");
    });

    await t.step("DELETE answers 204 then 404", async () => {
      const deleted = await call(server, "/kv/empty", { method: "DELETE" });
      assert.equal(deleted.status, 204);
      assert.equal(deleted.text, "");
      const again = await call(server, "/kv/empty", { method: "DELETE" });
      assert.equal(again.status, 404);
      assert.equal(again.text, '{"error":"key not found"}\n');
      assert.equal(again.headers.get("content-type"), JSON_TYPE);
    });

    await t.step("GET of a missing key is 404 JSON", async () => {
      const missing = await call(server, "/kv/nope");
      assert.equal(missing.status, 404);
      assert.equal(missing.text, '{"error":"key not found"}\n');
    });

    await t.step("empty keys are 400", async () => {
      for (const [method, path] of [["PUT", "/kv/"], ["DELETE", "/kv/"]]) {
        const reply = await call(server, path as string, {
          method,
          body: method === "PUT" ? "x" : undefined,
        } as CallOptions);
        assert.equal(reply.status, 400);
        assert.equal(reply.text, '{"error":"key is required"}\n');
      }
      for (const path of ["/kv/%20", "/kv/%2F"]) {
        const reply = await call(server, path);
        assert.equal(reply.status, 400, path);
        assert.equal(reply.text, '{"error":"key is required"}\n');
      }
    });

    await t.step("POST and PATCH are 405 with Allow", async () => {
      for (const method of ["POST", "PATCH"]) {
        const reply = await call(server, "/kv/app%2Fconfig", {
          method,
          body: "x",
        });
        assert.equal(reply.status, 405);
        assert.equal(reply.headers.get("allow"), "DELETE, GET, HEAD, PUT");
        assert.equal(reply.text, "Method Not Allowed\n");
        assert.equal(reply.headers.get("content-type"), TEXT_TYPE);
      }
    });

    await t.step("GET /kv redirects 307 to /kv/", async () => {
      const reply = await call(server, "/kv");
      assert.equal(reply.status, 307);
      assert.equal(reply.headers.get("location"), "/kv/");
      assert.equal(reply.text, '<a href="/kv/">Temporary Redirect</a>.\n\n');
    });

    await t.step("format header wins over query", async () => {
      await call(server, "/kv/f1?format=yaml", {
        method: "PUT",
        body: "x",
        headers: { "x-stash-format": "toml" },
      });
      await call(server, "/kv/f2?format=yaml", { method: "PUT", body: "x" });
      await call(server, "/kv/f3?format=JSON", { method: "PUT", body: "x" });
      await call(server, "/kv/f4", { method: "PUT", body: "x" });
      const types = [];
      for (const key of ["f1", "f2", "f3", "f4"]) {
        types.push((await call(server, `/kv/${key}`)).headers.get(
          "content-type",
        ));
      }
      assert.deepEqual(types, [
        "application/toml",
        "application/yaml",
        "text/plain",
        "text/plain",
      ]);
    });

    await t.step("content types of every format", async () => {
      const expected: Record<string, string> = {
        text: "text/plain",
        ini: "text/plain",
        hcl: "text/plain",
        json: "application/json",
        yaml: "application/yaml",
        xml: "application/xml",
        toml: "application/toml",
        shell: "text/x-shellscript",
      };
      for (const [format, type] of Object.entries(expected)) {
        await call(server, `/kv/fmt%2F${format}?format=${format}`, {
          method: "PUT",
          body: "x",
        });
        const reply = await call(server, `/kv/fmt%2F${format}`);
        assert.equal(reply.headers.get("content-type"), type, format);
      }
      server.put("fmt/odd", "x", "weird");
      const odd = await call(server, "/kv/fmt%2Fodd");
      assert.equal(odd.headers.get("content-type"), "application/octet-stream");
    });

    await t.step("overwrite keeps created_at, updates format", async () => {
      const before = JSON.parse((await call(server, "/kv/?prefix=f4")).text);
      await call(server, "/kv/f4?format=json", { method: "PUT", body: "y" });
      const after = JSON.parse((await call(server, "/kv/?prefix=f4")).text);
      assert.equal(after[0].created_at, before[0].created_at);
      assert.notEqual(after[0].updated_at, before[0].updated_at);
      assert.equal(after[0].format, "json");
    });

    await t.step("unknown paths are 404 text", async () => {
      const reply = await call(server, "/other");
      assert.equal(reply.status, 404);
      assert.equal(reply.text, "404 page not found\n");
    });
  });
});

Deno.test("key endpoints on v0.13.0", async (t) => {
  await withServer({ version: "v0.13.0" }, async (server) => {
    await t.step("PUT answers 200 for create and overwrite", async () => {
      const first = await call(server, "/kv/a", { method: "PUT", body: "1" });
      const second = await call(server, "/kv/a", { method: "PUT", body: "2" });
      assert.equal(first.status, 200);
      assert.equal(second.status, 200);
    });

    await t.step("reads send no CSP header", async () => {
      const read = await call(server, "/kv/a");
      assert.equal(read.headers.get("content-security-policy"), null);
      assert.equal(read.headers.get("app-version"), "v0.13.0");
    });

    await t.step("subscribe path is an ordinary key", async () => {
      const missing = await call(server, "/kv/subscribe/x");
      assert.equal(missing.status, 404);
      await call(server, "/kv/subscribe%2Fx", { method: "PUT", body: "s" });
      const read = await call(server, "/kv/subscribe/x");
      assert.equal(read.status, 200);
      assert.equal(read.text, "s");
    });

    await t.step("HEAD of a ping key reads the key", async () => {
      const missing = await call(server, "/kv/app%2Fping", { method: "HEAD" });
      assert.equal(missing.status, 404);
      const pong = await call(server, "/kv/app%2Fping");
      assert.equal(pong.text, "pong");
    });
  });
});

Deno.test("key normalisation", async (t) => {
  const rows: Array<[string, string]> = [
    ["/kv/app/config", "app/config"],
    ["/kv/app%2Fconfig", "app/config"],
    ["/kv/app/config/", "app/config"],
    ["/kv/%2Fapp%2Fconfig%2F", "app/config"],
    ["/kv/%20app%2Fconfig%20", "app/config"],
    ["/kv/my%20key", "my_key"],
    ["/kv/a%2F..%2Fb", "a/../b"],
    ["/kv/a%2F%2Fb", "a//b"],
    ["/kv/100%25", "100%"],
    ["/kv/%3F%23", "?#"],
    ["/kv/%E2%9C%93", "✓"],
    ["/kv/%C2%85nel%C2%A0", "nel"],
    ["/kv/%09tab%0A", "tab"],
    ["/kv/%EF%BB%BFbom", "\uFEFFbom"],
    ["/kv/history%2Fx", "history/x"],
    ["/kv/history/y", "history/y"],
    ["/kv/subscribe%2Fz", "subscribe/z"],
    ["/kv/in%20a%20b", "in_a_b"],
  ];
  for (const [path, key] of rows) {
    await t.step(`PUT ${path} stores ${JSON.stringify(key)}`, async () => {
      await withServer({}, async (server) => {
        const reply = await call(server, path, { method: "PUT", body: "v" });
        assert.equal(reply.status, 201);
        assert.deepEqual(server.keys(), [key]);
      });
    });
  }

  await t.step("DELETE /kv/history/x is the ordinary key", async () => {
    await withServer({}, async (server) => {
      server.put("history/x", "v");
      const reply = await call(server, "/kv/history/x", { method: "DELETE" });
      assert.equal(reply.status, 204);
      assert.deepEqual(server.keys(), []);
    });
  });

  await t.step("literal // redirects 307, also on PUT", async () => {
    await withServer({}, async (server) => {
      const put = await call(server, "/kv/a//b?format=json", {
        method: "PUT",
        body: "x",
      });
      assert.equal(put.status, 307);
      assert.equal(put.headers.get("location"), "/kv/a/b?format=json");
      assert.equal(put.text, "");
      const get = await call(server, "/kv/a//b");
      assert.equal(get.status, 307);
      assert.equal(get.headers.get("location"), "/kv/a/b");
      assert.deepEqual(server.keys(), []);
    });
  });

  await t.step("cleanPath resolves dot segments like Go", () => {
    assert.equal(cleanPath("/kv/a/../b"), "/kv/b");
    assert.equal(cleanPath("/kv/./a"), "/kv/a");
    assert.equal(cleanPath("/kv/a//b/"), "/kv/a/b/");
    assert.equal(cleanPath("/kv/"), "/kv/");
    assert.equal(cleanPath("/kv/a%2F..%2Fb"), "/kv/a%2F..%2Fb");
  });

  await t.step("normalizeKey trims like Go's TrimSpace", () => {
    assert.equal(normalizeKey("\u0085 /a b/ \u00a0"), "a_b");
    assert.equal(normalizeKey("\ufeffa"), "\ufeffa");
    assert.equal(normalizeKey("/ a/"), "_a");
  });

  await t.step("ping trap and the encoded-slash workaround", async () => {
    await withServer({}, async (server) => {
      const put = await call(server, "/kv/app%2Fping", {
        method: "PUT",
        body: "not pong",
      });
      assert.equal(put.status, 201);
      for (const path of ["/kv/app%2Fping", "/kv/app/PING", "/x/ping"]) {
        const pong = await call(server, path);
        assert.equal(pong.status, 200, path);
        assert.equal(pong.text, "pong");
        assert.equal(pong.headers.get("content-type"), "text/plain");
      }
      for (const path of ["/kv/app%2Fping%2F", "/kv/app/ping/"]) {
        const value = await call(server, path);
        assert.equal(value.text, "not pong", path);
      }
      const head = await call(server, "/ping", { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("content-length"), "4");
    });
  });
});

Deno.test("list endpoint", async (t) => {
  await t.step("newest shape, order and flags", async () => {
    await withServer({}, async (server) => {
      await call(server, "/kv/app%2Fa?format=json", {
        method: "PUT",
        body: "{}",
      });
      await call(server, "/kv/secrets%2Fdb", { method: "PUT", body: "pw" });
      const zk = "$ZK$" + btoa("x".repeat(44));
      await call(server, "/kv/app%2Fzk", { method: "PUT", body: zk });
      const reply = await call(server, "/kv/");
      assert.equal(reply.headers.get("content-type"), JSON_TYPE);
      assert.ok(reply.text.endsWith("]\n"));
      const list = JSON.parse(reply.text);
      assert.deepEqual(
        list.map((e: { key: string }) => e.key),
        ["app/zk", "secrets/db", "app/a"],
      );
      assert.deepEqual(Object.keys(list[0]), [
        "key",
        "size",
        "format",
        "secret",
        "zk_encrypted",
        "created_at",
        "updated_at",
      ]);
      assert.equal(list[0].zk_encrypted, true);
      assert.equal(list[0].size, zk.length);
      assert.equal(list[1].secret, true);
      assert.equal(list[2].format, "json");
      assert.equal(list[2].secret, false);
      assert.match(list[2].created_at, NANO_TIME_REGEXP);
    });
  });

  await t.step("v0.13.0 shape is PascalCase", async () => {
    await withServer({ version: "v0.13.0" }, async (server) => {
      await call(server, "/kv/secrets%2Fdb", { method: "PUT", body: "pw" });
      const list = JSON.parse((await call(server, "/kv/")).text);
      assert.deepEqual(Object.keys(list[0]), [
        "Key",
        "Size",
        "Format",
        "CreatedAt",
        "UpdatedAt",
      ]);
    });
  });

  await t.step("null for a prefix miss, [] for an empty store", async () => {
    await withServer({}, async (server) => {
      assert.equal((await call(server, "/kv/")).text, "[]\n");
      assert.equal((await call(server, "/kv/?prefix=x")).text, "null\n");
      server.put("application/x", "v");
      const prefixed = JSON.parse((await call(server, "/kv/?prefix=app")).text);
      assert.equal(prefixed.length, 1);
      assert.equal((await call(server, "/kv/?prefix=nothing")).text, "null\n");
    });
  });

  await t.step("filter values on newest", async () => {
    await withServer({}, async (server) => {
      server.put("app/a", "v");
      server.put("secrets/b", "v");
      const keysOf = async (query: string) => {
        const reply = await call(server, `/kv/?${query}`);
        const list = JSON.parse(reply.text) ?? [];
        return list.map((e: { key: string }) => e.key);
      };
      for (const value of ["all", "ALL", ""]) {
        assert.deepEqual(await keysOf(`filter=${value}`), [
          "secrets/b",
          "app/a",
        ]);
      }
      for (const value of ["secrets", "SecretsOnly", "true"]) {
        assert.deepEqual(await keysOf(`filter=${value}`), ["secrets/b"]);
      }
      for (const value of ["keys", "keysonly", "FALSE"]) {
        assert.deepEqual(await keysOf(`filter=${value}`), ["app/a"]);
      }
      const invalid = await call(server, "/kv/?filter=bogus");
      assert.equal(invalid.status, 400);
      assert.equal(invalid.text, '{"error":"invalid filter parameter"}\n');
      assert.equal(
        (await call(server, "/kv/?filter=secrets&prefix=app")).text,
        "null\n",
      );
    });
  });

  await t.step("v0.13.0 ignores filter", async () => {
    await withServer({ version: "v0.13.0" }, async (server) => {
      server.put("app/a", "v");
      const reply = await call(server, "/kv/?filter=bogus");
      assert.equal(reply.status, 200);
      assert.equal(JSON.parse(reply.text).length, 1);
    });
  });

  await t.step("timestamps carry trimmed nanoseconds", () => {
    assert.equal(
      formatNanos(1_700_000_000_000_000_000n),
      "2023-11-14T22:13:20Z",
    );
    assert.equal(
      formatNanos(1_700_000_000_500_000_000n),
      "2023-11-14T22:13:20.5Z",
    );
    assert.equal(
      formatNanos(1_700_000_000_558_363_724n),
      "2023-11-14T22:13:20.558363724Z",
    );
  });

  await t.step("timestamps stay ordered with a frozen clock", async () => {
    await withServer({ now: () => 1_700_000_000_000 }, async (server) => {
      for (const key of ["a", "b", "c"]) {
        await call(server, `/kv/${key}`, { method: "PUT", body: "v" });
      }
      const list = JSON.parse((await call(server, "/kv/")).text);
      assert.deepEqual(list.map((e: { key: string }) => e.key), [
        "c",
        "b",
        "a",
      ]);
      const times = list.map((e: { updated_at: string }) => e.updated_at);
      assert.equal(new Set(times).size, 3);
    });
  });
});

const ADMIN = "admin-token-0123456789";
const READER = "reader-token-0123456789";
const AUTH_TOKENS: TokenConfig[] = [
  { token: ADMIN, permissions: { "*": "rw" } },
  { token: READER, permissions: { "app/*": "r" } },
];

Deno.test("auth with a read-only token", async (t) => {
  for (const version of ["v0.13.0", "newest"] as const) {
    await t.step(`outcomes on ${version}`, async () => {
      await withServer(
        { version, tokens: AUTH_TOKENS, history: true },
        async (server) => {
          server.put("app/x", "v");
          server.put("secrets/db", "pw");
          const as = (path: string, options: CallOptions = {}) =>
            call(server, path, { ...options, headers: bearer(READER) });
          assert.equal((await as("/kv/app%2Fx")).status, 200);
          assert.equal((await as("/kv/app%2Fmissing")).status, 404);
          const put = await as("/kv/app%2Fx", { method: "PUT", body: "w" });
          assert.equal(put.status, 403);
          assert.equal(put.text, "Forbidden\n");
          assert.equal(put.headers.get("content-type"), TEXT_TYPE);
          assert.equal(
            (await as("/kv/app%2Fx", { method: "DELETE" })).status,
            403,
          );
          assert.equal((await as("/kv/secrets%2Fdb")).status, 403);
          assert.equal((await as("/kv/secrets%2Fnone")).status, 403);
          assert.equal((await as("/kv/app")).status, 403);
          const list = JSON.parse((await as("/kv/")).text);
          assert.equal(list.length, 1);
          assert.equal((await as("/kv/?prefix=secrets")).text, "null\n");
          const history = await as("/kv/history/app%2Fx");
          assert.equal(history.status, version === "newest" ? 200 : 403);
          const anonymous = await call(server, "/kv/app%2Fx");
          assert.equal(anonymous.status, 401);
          assert.equal(anonymous.text, "Unauthorized\n");
          const wrong = await call(server, "/kv/app%2Fx", {
            headers: bearer("wrong"),
          });
          assert.equal(wrong.status, 401);
          assert.equal((await call(server, "/ping")).text, "pong");
        },
      );
    });
  }

  await t.step("credential forms per version", async () => {
    for (const version of ["v0.13.0", "newest"] as const) {
      await withServer({ version, tokens: AUTH_TOKENS }, async (server) => {
        server.put("app/x", "v");
        const lower = await call(server, "/kv/app%2Fx", {
          headers: { authorization: `bearer ${ADMIN}` },
        });
        assert.equal(lower.status, 401);
        const basic = await call(server, "/kv/app%2Fx", {
          headers: { authorization: `Basic ${ADMIN}` },
        });
        assert.equal(basic.status, 401);
        const xAuth = await call(server, "/kv/app%2Fx", {
          headers: { "x-auth-token": ADMIN },
        });
        assert.equal(xAuth.status, version === "newest" ? 200 : 401, version);
      });
    }
  });

  await t.step("X-Auth-Token is checked before Bearer", async () => {
    await withServer({ tokens: AUTH_TOKENS }, async (server) => {
      const reply = await call(server, "/kv/app%2Fx", {
        method: "PUT",
        body: "v",
        headers: { "x-auth-token": READER, ...bearer(ADMIN) },
      });
      assert.equal(reply.status, 403);
    });
  });

  await t.step("list of nothing visible is JSON 401", async () => {
    for (const version of ["v0.13.0", "newest"] as const) {
      await withServer({ version, tokens: AUTH_TOKENS }, async (server) => {
        const empty = await call(server, "/kv/", { headers: bearer(ADMIN) });
        assert.equal(empty.status, 401);
        assert.equal(empty.text, '{"error":"unauthorized"}\n');
        assert.equal(empty.headers.get("content-type"), JSON_TYPE);
        server.put("other/x", "v");
        const hidden = await call(server, "/kv/", { headers: bearer(READER) });
        assert.equal(hidden.status, 401);
        assert.equal(hidden.headers.get("content-type"), JSON_TYPE);
      });
    }
  });
});

Deno.test("ACL rules", async (t) => {
  const check = async (
    options: StashServerOptions,
    token: string | undefined,
    cases: Array<[method: string, key: string, status: number]>,
  ) => {
    await withServer(options, async (server) => {
      for (const [method, key, status] of cases) {
        server.put(key, "v");
        const reply = await call(server, `/kv/${encodeURIComponent(key)}`, {
          method,
          body: method === "PUT" ? "v" : undefined,
          headers: token === undefined ? {} : bearer(token),
        } as CallOptions);
        assert.equal(reply.status, status, `${method} ${key}`);
      }
    });
  };

  await t.step("longest pattern decides, even when it denies", async () => {
    const tokens = [{
      token: "t",
      permissions: { "*": "rw", "app/*": "r", "app/open": "rw" },
    }] satisfies TokenConfig[];
    await check({ tokens }, "t", [
      ["PUT", "other", 200],
      ["PUT", "app/x", 403],
      ["GET", "app/x", 200],
      ["PUT", "app/open", 200],
    ]);
  });

  await t.step("trailing * is a string prefix", async () => {
    const tokens = [{
      token: "t",
      permissions: { "app*": "r" },
    }] satisfies TokenConfig[];
    await check({ tokens }, "t", [
      ["GET", "application", 200],
      ["GET", "app", 200],
      ["GET", "ap", 403],
    ]);
  });

  await t.step("write implies read only on newest", async () => {
    const tokens = [{
      token: "t",
      permissions: { "*": "w" },
    }] satisfies TokenConfig[];
    await check({ tokens }, "t", [["GET", "k", 200], ["PUT", "k", 200]]);
    await check({ tokens, version: "v0.13.0" }, "t", [
      ["GET", "k", 403],
      ["PUT", "k", 200],
    ]);
  });

  await t.step("access spellings", async () => {
    const tokens = [{
      token: "t",
      permissions: {
        "a/*": "read",
        "b/*": "write",
        "c/*": "readwrite",
        "d/*": "read-write",
      },
    }] satisfies TokenConfig[];
    await check({ tokens, version: "v0.13.0" }, "t", [
      ["GET", "a/x", 200],
      ["PUT", "a/x", 403],
      ["GET", "b/x", 403],
      ["PUT", "b/x", 200],
      ["PUT", "c/x", 200],
      ["GET", "d/x", 200],
    ]);
  });

  await t.step("secrets need a secrets pattern on newest", async () => {
    const tokens = [{
      token: "t",
      permissions: { "*": "rw", "app/secrets/*": "r" },
    }] satisfies TokenConfig[];
    await check({ tokens }, "t", [
      ["GET", "secrets/db", 403],
      ["GET", "a/secrets/b", 403],
      ["GET", "app/secrets/b", 200],
      ["PUT", "app/secrets/b", 403],
      ["GET", "my-secrets/x", 200],
    ]);
    await check({ tokens, version: "v0.13.0" }, "t", [
      ["GET", "secrets/db", 200],
    ]);
  });

  await t.step("public ACL for anonymous requests", async () => {
    const tokens = [
      { token: "*", permissions: { "public/*": "r" } },
      { token: "t", permissions: { "app/*": "rw" } },
    ] satisfies TokenConfig[];
    await check({ tokens }, undefined, [
      ["GET", "public/x", 200],
      ["PUT", "public/x", 401],
      ["GET", "app/x", 401],
    ]);
    await check({ tokens }, "t", [["GET", "public/x", 200], [
      "GET",
      "app/x",
      200,
    ]]);
    await withServer({ tokens }, async (server) => {
      server.put("public/a", "v");
      server.put("app/b", "v");
      const list = JSON.parse((await call(server, "/kv/")).text);
      assert.deepEqual(list.map((e: { key: string }) => e.key), ["public/a"]);
    });
  });

  await t.step("authorization precedes existence", async () => {
    await withServer({ tokens: AUTH_TOKENS }, async (server) => {
      const reply = await call(server, "/kv/other%2Fmissing", {
        headers: bearer(READER),
      });
      assert.equal(reply.status, 403);
    });
  });

  await t.step("setTokens revokes on the next request", async () => {
    await withServer({ tokens: AUTH_TOKENS }, async (server) => {
      server.put("app/x", "v");
      assert.equal(
        (await call(server, "/kv/app%2Fx", { headers: bearer(READER) })).status,
        200,
      );
      server.setTokens([AUTH_TOKENS[0] as TokenConfig]);
      assert.equal(
        (await call(server, "/kv/app%2Fx", { headers: bearer(READER) })).status,
        401,
      );
      server.setTokens(undefined);
      assert.equal((await call(server, "/kv/app%2Fx")).status, 200);
    });
  });
});

Deno.test("secret paths on newest", async (t) => {
  const validZk = "$ZK$" + btoa("k".repeat(44));
  const shortZk = "$ZK$" + btoa("k".repeat(43));

  await t.step("without a secrets key", async () => {
    await withServer({ secretsKey: false }, async (server) => {
      for (
        const [method, body] of [["PUT", "v"], ["PUT", validZk], [
          "GET",
          undefined,
        ]]
      ) {
        const reply = await call(server, "/kv/app%2Fsecrets%2Fdb", {
          method,
          body,
        } as CallOptions);
        assert.equal(reply.status, 400, `${method} ${body}`);
        assert.equal(reply.text, '{"error":"secrets not configured"}\n');
      }
      server.put("secrets/x", "v");
      assert.equal(
        (await call(server, "/kv/secrets%2Fx", { method: "DELETE" })).status,
        204,
      );
    });
  });

  await t.step("ZK payloads are validated", async () => {
    await withServer({}, async (server) => {
      for (
        const body of [
          shortZk,
          "$ZK$not base64!",
          "$ZK$" + btoa("k".repeat(44)).replace(/=+$/, ""),
        ]
      ) {
        const reply = await call(server, "/kv/secrets%2Fa", {
          method: "PUT",
          body,
        });
        assert.equal(reply.status, 400, body);
        assert.equal(reply.text, '{"error":"invalid ZK payload"}\n');
      }
      assert.equal(
        (await call(server, "/kv/secrets%2Fa", {
          method: "PUT",
          body: validZk,
        })).status,
        201,
      );
      assert.equal(
        (await call(server, "/kv/secrets%2Fb", {
          method: "PUT",
          body: "plain",
        })).status,
        201,
      );
      assert.equal(
        (await call(server, "/kv/open", { method: "PUT", body: shortZk }))
          .status,
        201,
      );
      const list = JSON.parse((await call(server, "/kv/")).text);
      const flags = Object.fromEntries(
        list.map((
          e: { key: string; zk_encrypted: boolean },
        ) => [e.key, e.zk_encrypted]),
      );
      assert.deepEqual(flags, {
        "secrets/a": true,
        "secrets/b": false,
        open: true,
      });
      assert.equal((await call(server, "/kv/secrets%2Fa")).text, validZk);
    });
  });

  await t.step("bare $ZK$ is not a ZK value", async () => {
    await withServer({}, async (server) => {
      await call(server, "/kv/z", { method: "PUT", body: "$ZK$" });
      const list = JSON.parse((await call(server, "/kv/")).text);
      assert.equal(list[0].zk_encrypted, false);
    });
  });
});

Deno.test("body limit", async (t) => {
  await t.step("inclusive at 1 MiB", async () => {
    await withServer({}, async (server) => {
      const ok = await call(server, "/kv/big", {
        method: "PUT",
        body: new Uint8Array(1_048_576),
      });
      assert.equal(ok.status, 201);
      const tooLarge = await call(server, "/kv/big2", {
        method: "PUT",
        body: new Uint8Array(1_048_577),
      });
      assert.equal(tooLarge.status, 413);
      assert.equal(tooLarge.text, "");
      assert.equal(tooLarge.headers.get("connection"), "close");
      assert.equal(tooLarge.headers.get("app-name"), null);
      assert.deepEqual(server.keys(), ["big"]);
    });
  });

  await t.step("configurable and checked by Content-Length", async () => {
    await withServer({ bodyLimit: 4 }, async (server) => {
      assert.equal(
        (await call(server, "/kv/a", { method: "PUT", body: "1234" })).status,
        201,
      );
      assert.equal(
        (await call(server, "/kv/a", { method: "PUT", body: "12345" })).status,
        413,
      );
      const listener = await server.listen();
      const response = await fetch(`${listener.url}/kv/b`, {
        method: "PUT",
        body: "123456",
      });
      await response.body?.cancel();
      assert.equal(response.status, 413);
      const recorded = server.requests.at(-1);
      assert.equal(recorded?.headers["content-length"], "6");
      assert.equal(recorded?.body.length, 0);
    });
  });
});

Deno.test("rate limit with an injected clock", async (t) => {
  let now = 1_700_000_000_000;
  const options: StashServerOptions = {
    rateLimit: { rate: 2, burst: 3 },
    now: () => now,
  };
  await withServer(options, async (server) => {
    await t.step("burst then 429", async () => {
      const remaining = [];
      for (let i = 0; i < 3; i++) {
        const reply = await call(server, "/ping");
        assert.equal(reply.status, 200);
        remaining.push(reply.headers.get("ratelimit-remaining"));
      }
      assert.deepEqual(remaining, ["2", "1", "0"]);
      const limited = await call(server, "/kv/x");
      assert.equal(limited.status, 429);
      assert.equal(limited.text, "You have reached maximum request limit.");
      assert.equal(limited.headers.get("content-type"), TEXT_TYPE);
      assert.equal(limited.headers.get("ratelimit-remaining"), "0");
      assert.equal(limited.headers.get("ratelimit-reset"), "1");
      assert.equal(limited.headers.get("ratelimit-limit"), "2");
      assert.equal(limited.headers.get("retry-after"), null);
      assert.equal(limited.headers.get("x-request-id"), null);
    });

    await t.step("refills with time", async () => {
      now += 500;
      assert.equal((await call(server, "/kv/x")).status, 404);
      assert.equal((await call(server, "/kv/x")).status, 429);
    });

    await t.step("buckets are per forwarded client", async () => {
      const other = await call(server, "/kv/x", {
        headers: { "x-forwarded-for": "10.1.2.3, 127.0.0.1" },
      });
      assert.equal(other.status, 404);
      assert.equal(
        other.headers.get("x-rate-limit-request-remote-addr"),
        "10.1.2.3",
      );
    });
  });

  await t.step("off by default with constant headers", async () => {
    await withServer({}, async (server) => {
      for (let i = 0; i < 150; i++) {
        const reply = await call(server, "/ping");
        assert.equal(reply.status, 200);
      }
      const last = await call(server, "/ping");
      assert.equal(last.headers.get("ratelimit-limit"), "100");
      assert.equal(last.headers.get("ratelimit-remaining"), "99");
    });
  });
});

Deno.test("common headers and base path", async (t) => {
  await withServer({}, async (server) => {
    await t.step("X-Request-Id echoed or generated", async () => {
      const echoed = await call(server, "/ping", {
        headers: { "x-request-id": "req-1" },
      });
      assert.equal(echoed.headers.get("x-request-id"), "req-1");
      const generated = await call(server, "/ping");
      assert.match(
        generated.headers.get("x-request-id") ?? "",
        /^[0-9a-f]{40}$/,
      );
      assert.equal(generated.headers.get("app-name"), "stash");
      assert.equal(generated.headers.get("author"), "umputun");
    });
  });

  await t.step("base path mounting", async () => {
    await withServer({ basePath: "/stash/" }, async (server) => {
      const root = await call(server, "/stash");
      assert.equal(root.status, 301);
      assert.equal(root.headers.get("location"), "/stash/");
      assert.equal(
        (await call(server, "/stash/kv/a", { method: "PUT", body: "v" }))
          .status,
        201,
      );
      assert.equal((await call(server, "/stash/kv/a")).text, "v");
      const kv = await call(server, "/stash/kv");
      assert.equal(kv.headers.get("location"), "/stash/kv/");
      assert.equal((await call(server, "/kv/a")).status, 404);
    });
  });
});

Deno.test("history endpoint", async (t) => {
  await t.step("off answers 503", async () => {
    await withServer({}, async (server) => {
      const reply = await call(server, "/kv/history/x");
      assert.equal(reply.status, 503);
      assert.equal(reply.text, '{"error":"git integration not enabled"}\n');
    });
  });

  for (const version of ["newest", "v0.13.0"] as const) {
    await t.step(`entries on ${version}`, async () => {
      const tokens = [{
        token: ADMIN,
        permissions: { "*": "rw" },
      }] satisfies TokenConfig[];
      await withServer({ version, history: true, tokens }, async (server) => {
        const headers = bearer(ADMIN);
        await call(server, "/kv/app%2Fh", {
          method: "PUT",
          body: "one",
          headers,
        });
        await call(server, "/kv/app%2Fh?format=json", {
          method: "PUT",
          body: "two",
          headers,
        });
        await call(server, "/kv/app%2Fh", { method: "DELETE", headers });
        const reply = await call(server, "/kv/history/app%2Fh", { headers });
        assert.equal(reply.headers.get("content-type"), JSON_TYPE);
        const entries = JSON.parse(reply.text);
        const operations = entries.map((e: { operation: string }) =>
          e.operation
        );
        const expected = version === "newest"
          ? ["delete", "update", "create"]
          : ["delete", "set", "set"];
        assert.deepEqual(operations, expected);
        assert.deepEqual(Object.keys(entries[0]), [
          "hash",
          "timestamp",
          "author",
          "operation",
          "format",
          "value",
        ]);
        assert.equal(entries[1].value, btoa("two"));
        assert.equal(entries[1].format, "json");
        assert.equal(entries[0].value, "");
        assert.equal(entries[2].author, `token:${ADMIN.slice(0, 8)}`);
        assert.match(entries[2].hash, /^[0-9a-f]{7}$/);
        assert.match(entries[2].timestamp, SECOND_TIME_REGEXP);
      });
    });
  }

  await t.step("limits, unknown keys and errors", async () => {
    await withServer({ history: true }, async (server) => {
      for (let i = 0; i < 55; i++) {
        await call(server, "/kv/many", { method: "PUT", body: String(i) });
      }
      const many = JSON.parse((await call(server, "/kv/history/many")).text);
      assert.equal(many.length, 50);
      assert.equal(many[0].value, btoa("54"));
      assert.equal(many[0].author, "stash");
      assert.equal((await call(server, "/kv/history/never")).text, "[]\n");
      const put = await call(server, "/kv/a%2F..%2Fb", {
        method: "PUT",
        body: "v",
      });
      assert.equal(put.status, 201);
      const dotted = await call(server, "/kv/history/a%2F..%2Fb");
      assert.equal(dotted.status, 500);
      assert.equal(dotted.text, '{"error":"failed to get history"}\n');
      const empty = await call(server, "/kv/history/");
      assert.equal(empty.status, 400);
      assert.equal(empty.text, '{"error":"key is required"}\n');
    });
  });
});

Deno.test("SSE subscriptions", async (t) => {
  await t.step("headers wait for the first event", async () => {
    await withServer(
      { now: () => Date.UTC(2026, 0, 3, 10, 30, 0, 250) },
      async (server) => {
        let settled = false;
        const pending = server.fetch(`${BASE}/kv/subscribe/app%2Fconfig`).then(
          (response) => {
            settled = true;
            return response;
          },
        );
        await tick();
        assert.equal(settled, false);
        assert.equal(server.subscriberCount, 1);
        await call(server, "/kv/app%2Fconfig", { method: "PUT", body: "v" });
        const response = await pending;
        assert.equal(response.status, 200);
        assert.equal(response.headers.get("content-type"), "text/event-stream");
        const reader = response.body!.getReader();
        assert.equal(
          await readChunk(reader),
          'event: change\ndata: {"key":"app/config","action":"create","timestamp":"2026-01-03T10:30:00Z"}\n\n',
        );
        await call(server, "/kv/app%2Fconfig", { method: "PUT", body: "w" });
        assert.match((await readChunk(reader)) ?? "", /"action":"update"/);
        await call(server, "/kv/app%2Fconfig", { method: "DELETE" });
        assert.match((await readChunk(reader)) ?? "", /"action":"delete"/);
        await reader.cancel();
        assert.equal(server.subscriberCount, 0);
      },
    );
  });

  await t.step("flushOnSubscribe sends headers at once", async () => {
    await withServer({ flushOnSubscribe: true }, async (server) => {
      const response = await server.fetch(`${BASE}/kv/subscribe/*`);
      assert.equal(response.status, 200);
      await response.body?.cancel();
      assert.equal(server.subscriberCount, 0);
    });
  });

  await t.step("paths: prefix, all, app* exact", async () => {
    await withServer({ flushOnSubscribe: true }, async (server) => {
      const open = async (path: string) =>
        (await server.fetch(`${BASE}/kv/subscribe/${path}`)).body!.getReader();
      const prefix = await open("app%2F*");
      const slash = await open("app/");
      const all = await open("*");
      const star = await open("app*");
      for (const key of ["application", "app/x", "app*"]) {
        await call(server, `/kv/${encodeURIComponent(key)}`, {
          method: "PUT",
          body: "v",
        });
      }
      server.dropStreams();
      const keys = async (reader: ReadableStreamDefaultReader<Uint8Array>) =>
        [...(await readAll(reader)).matchAll(/"key":"([^"]+)"/g)].map((m) =>
          m[1]
        );
      assert.deepEqual(await keys(prefix), ["app/x"]);
      assert.deepEqual(await keys(slash), ["app/x"]);
      assert.deepEqual(await keys(all), ["application", "app/x", "app*"]);
      assert.deepEqual(await keys(star), ["app*"]);
    });
  });

  await t.step("refusals: 400, 401, 403", async () => {
    await withServer({ tokens: AUTH_TOKENS }, async (server) => {
      const empty = await call(server, "/kv/subscribe/%20", {
        headers: bearer(ADMIN),
      });
      assert.equal(empty.status, 400);
      assert.equal(empty.text, "key path required\n");
      assert.equal(empty.headers.get("content-type"), TEXT_TYPE);
      const anonymous = await call(server, "/kv/subscribe/*");
      assert.equal(anonymous.status, 401);
      const denied = await call(server, "/kv/subscribe/other%2Fx", {
        headers: bearer(READER),
      });
      assert.equal(denied.status, 403);
      assert.equal(denied.text, "access denied\n");
      assert.equal(server.subscriberCount, 0);
    });
  });

  await t.step("events are filtered by current credentials", async () => {
    const tokens: TokenConfig[] = [
      { token: ADMIN, permissions: { "*": "rw", "secrets/*": "rw" } },
      { token: READER, permissions: { "*": "r" } },
    ];
    await withServer({ tokens, flushOnSubscribe: true }, async (server) => {
      const response = await server.fetch(`${BASE}/kv/subscribe/*`, {
        headers: bearer(READER),
      });
      const reader = response.body!.getReader();
      const write = (key: string) =>
        call(server, `/kv/${encodeURIComponent(key)}`, {
          method: "PUT",
          body: "v",
          headers: bearer(ADMIN),
        });
      await write("secrets/hidden");
      await write("app/seen");
      server.setTokens([tokens[0] as TokenConfig]);
      await write("app/after-revocation");
      server.dropStreams();
      const text = await readAll(reader);
      assert.deepEqual(
        [...text.matchAll(/"key":"([^"]+)"/g)].map((m) => m[1]),
        ["app/seen"],
      );
    });
  });

  await t.step("dropStreams before an event resolves empty", async () => {
    await withServer({}, async (server) => {
      const pending = server.fetch(`${BASE}/kv/subscribe/x`);
      await tick();
      server.dropStreams();
      const response = await pending;
      assert.equal(response.status, 200);
      assert.equal(await response.text(), "");
      assert.equal(server.subscriberCount, 0);
    });
  });

  await t.step("abort frees the concurrency slot", async () => {
    await withServer({ maxConcurrent: 1 }, async (server) => {
      const controller = new AbortController();
      const pending = server.fetch(`${BASE}/kv/subscribe/x`, {
        signal: controller.signal,
      });
      await tick();
      const busy = await call(server, "/ping");
      assert.equal(busy.status, 503);
      assert.equal(busy.text, "");
      controller.abort(new Error("stop"));
      await assert.rejects(pending, { message: "stop" });
      assert.equal(server.subscriberCount, 0);
      assert.equal((await call(server, "/ping")).status, 200);
    });
  });

  await t.step("abort mid-stream errors the body", async () => {
    await withServer({ flushOnSubscribe: true }, async (server) => {
      const controller = new AbortController();
      const response = await server.fetch(`${BASE}/kv/subscribe/*`, {
        signal: controller.signal,
      });
      const reader = response.body!.getReader();
      const read = reader.read();
      controller.abort(new Error("gone"));
      await assert.rejects(read, { message: "gone" });
      assert.equal(server.subscriberCount, 0);
    });
  });

  await t.step("close() ends streams", async () => {
    const server = createStashServer({ flushOnSubscribe: true });
    const response = await server.fetch(`${BASE}/kv/subscribe/*`);
    await server.close();
    assert.equal(await response.text(), "");
    assert.equal(server.subscriberCount, 0);
  });

  await t.step("slow subscriber is dropped when its buffer fills", async () => {
    await withServer(
      { flushOnSubscribe: true, sseBufferSize: 2 },
      async (server) => {
        const response = await server.fetch(`${BASE}/kv/subscribe/*`);
        for (let i = 0; i < 3; i++) {
          await call(server, `/kv/k${i}`, { method: "PUT", body: "v" });
        }
        assert.equal(server.subscriberCount, 0);
        const text = await response.text();
        assert.equal(text.split("event: change").length - 1, 2);
      },
    );
  });

  await t.step("blockingPublish makes writes wait for the reader", async () => {
    await withServer(
      { flushOnSubscribe: true, sseBufferSize: 1, blockingPublish: true },
      async (server) => {
        const response = await server.fetch(`${BASE}/kv/subscribe/*`);
        const reader = response.body!.getReader();
        let done = false;
        const put = call(server, "/kv/a", { method: "PUT", body: "v" }).then(
          (reply) => {
            done = true;
            return reply;
          },
        );
        await tick();
        assert.equal(done, false);
        assert.match((await readChunk(reader)) ?? "", /"key":"a"/);
        assert.equal((await put).status, 201);
        await reader.cancel();
      },
    );
  });

  await t.step("publishRaw writes bytes as given", async () => {
    await withServer({}, async (server) => {
      const pending = server.fetch(`${BASE}/kv/subscribe/*`);
      await tick();
      server.publishRaw(": comment\r\n\r\n");
      const response = await pending;
      const reader = response.body!.getReader();
      assert.equal(await readChunk(reader), ": comment\r\n\r\n");
      await reader.cancel();
    });
  });
});

Deno.test("faults", async (t) => {
  await t.step("respond with status, headers and body", async () => {
    await withServer({}, async (server) => {
      server.faults.add({
        method: "GET",
        path: /^\/kv\//,
        times: 2,
        action: {
          type: "respond",
          status: 502,
          headers: { "content-type": "text/html" },
          body: "<html>bad gateway</html>",
        },
      });
      for (let i = 0; i < 2; i++) {
        const reply = await call(server, "/kv/a");
        assert.equal(reply.status, 502);
        assert.equal(reply.text, "<html>bad gateway</html>");
      }
      assert.equal((await call(server, "/kv/a")).status, 404);
      assert.equal(server.faults.size, 0);
      assert.equal(server.requests.length, 3);
    });
  });

  await t.step("method and predicate matching, clear()", async () => {
    await withServer({}, async (server) => {
      server.faults.add({
        method: ["put"],
        path: (path) => path.endsWith("x"),
        times: Infinity,
        action: { type: "respond", status: 503 },
      });
      assert.equal((await call(server, "/kv/x")).status, 404);
      const put = () => call(server, "/kv/x", { method: "PUT", body: "v" });
      assert.equal((await put()).status, 503);
      assert.equal((await put()).status, 503);
      server.faults.clear();
      assert.equal((await put()).status, 201);
      assert.equal(new TextDecoder().decode(server.requests[1]?.body), "v");
    });
  });

  await t.step("delay, and abort during the delay", async () => {
    await withServer({}, async (server) => {
      server.faults.add({ action: { type: "delay", ms: 5 } });
      assert.equal((await call(server, "/ping")).text, "pong");
      server.faults.add({ action: { type: "delay", ms: 60_000 } });
      const controller = new AbortController();
      const pending = server.fetch(`${BASE}/ping`, {
        signal: controller.signal,
      });
      controller.abort(new Error("cancelled"));
      await assert.rejects(pending, { message: "cancelled" });
    });
  });

  await t.step("delay ends on close()", async () => {
    const server = createStashServer();
    server.faults.add({ action: { type: "delay", ms: 60_000 } });
    const pending = server.fetch(`${BASE}/ping`);
    await server.close();
    await assert.rejects(pending, TypeError);
  });

  await t.step("stall after headers until abort", async () => {
    await withServer({}, async (server) => {
      server.put("a", "abcdef");
      server.faults.add({ action: { type: "stall", afterBytes: 2 } });
      const controller = new AbortController();
      const response = await server.fetch(`${BASE}/kv/a`, {
        signal: controller.signal,
      });
      assert.equal(response.status, 200);
      const reader = response.body!.getReader();
      assert.equal(await readChunk(reader), "ab");
      const next = reader.read();
      await tick();
      controller.abort(new Error("timeout"));
      await assert.rejects(next, { message: "timeout" });
    });
  });

  await t.step("drip one byte at a time", async () => {
    await withServer({}, async (server) => {
      server.put("a", "abc");
      server.faults.add({ action: { type: "drip", intervalMs: 1 } });
      const response = await server.fetch(`${BASE}/kv/a`);
      const reader = response.body!.getReader();
      const chunks = [];
      for (let chunk = await readChunk(reader); chunk !== undefined;) {
        chunks.push(chunk);
        chunk = await readChunk(reader);
      }
      assert.deepEqual(chunks, ["a", "b", "c"]);
    });
  });

  await t.step("drip cancelled by the reader", async () => {
    await withServer({}, async (server) => {
      server.put("a", "abc");
      server.faults.add({ action: { type: "drip", intervalMs: 60_000 } });
      const response = await server.fetch(`${BASE}/kv/a`);
      const reader = response.body!.getReader();
      const read = reader.read();
      await reader.cancel();
      assert.equal((await read).done, true);
    });
  });

  await t.step("error the body mid-way", async () => {
    await withServer({}, async (server) => {
      server.put("k", "[1,2,3,4]");
      server.faults.add({ action: { type: "errorBody" } });
      const response = await server.fetch(`${BASE}/kv/k`);
      assert.equal(response.status, 200);
      await assert.rejects(response.text(), TypeError);
    });
  });

  await t.step("reject before headers", async () => {
    await withServer({}, async (server) => {
      server.faults.add({
        action: { type: "reject", message: "connection reset" },
      });
      await assert.rejects(server.fetch(`${BASE}/ping`), {
        name: "TypeError",
        message: "connection reset",
      });
      assert.equal(server.requests.length, 1);
    });
  });

  await t.step("custom handler sees the body", async () => {
    await withServer({}, async (server) => {
      server.faults.add({
        action: {
          type: "handler",
          handler: async (request) =>
            new Response(`echo ${await request.text()}`, { status: 418 }),
        },
      });
      const reply = await call(server, "/kv/a", { method: "PUT", body: "hi" });
      assert.equal(reply.status, 418);
      assert.equal(reply.text, "echo hi");
      assert.deepEqual(server.keys(), []);
    });
  });

  await t.step("truncated list body with wrong type", async () => {
    await withServer({}, async (server) => {
      server.faults.add({
        path: "/kv/",
        action: {
          type: "respond",
          status: 200,
          headers: { "content-type": "text/plain" },
          body: '[{"key":"a","si',
        },
      });
      const reply = await call(server, "/kv/");
      assert.equal(reply.headers.get("content-type"), "text/plain");
      assert.throws(() => JSON.parse(reply.text), SyntaxError);
    });
  });

  await t.step("SSE close after N events", async () => {
    await withServer({}, async (server) => {
      server.faults.add({ action: { type: "sseClose", afterEvents: 2 } });
      const pending = server.fetch(`${BASE}/kv/subscribe/*`);
      await tick();
      for (const key of ["a", "b", "c"]) {
        await call(server, `/kv/${key}`, { method: "PUT", body: "v" });
      }
      const text = await (await pending).text();
      assert.equal(text.split("event: change").length - 1, 2);
      assert.equal(server.subscriberCount, 0);
    });
  });

  await t.step("SSE cut mid-line", async () => {
    await withServer({ flushOnSubscribe: true }, async (server) => {
      server.faults.add({ action: { type: "sseCut", afterEvents: 1 } });
      const response = await server.fetch(`${BASE}/kv/subscribe/*`);
      await call(server, "/kv/a", { method: "PUT", body: "v" });
      await call(server, "/kv/b", { method: "PUT", body: "v" });
      const text = await response.text();
      assert.ok(text.startsWith('event: change\ndata: {"key":"a"'));
      assert.ok(!text.endsWith("\n\n"));
      assert.equal(text.split("event: change").length - 1, 2);
    });
  });

  await t.step("SSE stall keeps the stream open", async () => {
    await withServer({ flushOnSubscribe: true }, async (server) => {
      server.faults.add({ action: { type: "sseStall", afterEvents: 1 } });
      const response = await server.fetch(`${BASE}/kv/subscribe/*`);
      await call(server, "/kv/a", { method: "PUT", body: "v" });
      await call(server, "/kv/b", { method: "PUT", body: "v" });
      assert.equal(server.subscriberCount, 1);
      server.dropStreams();
      const text = await response.text();
      assert.equal(text.split("event: change").length - 1, 1);
    });
  });
});

Deno.test("listen on the loopback interface", async (t) => {
  await withServer({}, async (server) => {
    const listener = await server.listen();
    assert.match(listener.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(listener.url, `http://127.0.0.1:${listener.port}`);

    await t.step("real fetch round-trip", async () => {
      const put = await fetch(`${listener.url}/kv/app%2Fx`, {
        method: "PUT",
        body: "v",
      });
      await put.body?.cancel();
      assert.equal(put.status, 201);
      const get = await fetch(`${listener.url}/kv/app%2Fx`);
      assert.equal(await get.text(), "v");
      assert.equal(server.requests.at(-1)?.url, "/kv/app%2Fx");
    });

    await t.step("redirect is returned unfollowed", async () => {
      const reply = await fetch(`${listener.url}/kv`, { redirect: "manual" });
      await reply.body?.cancel();
      assert.equal(reply.status, 307);
    });

    await t.step("SSE over the socket, ended by close", async () => {
      const pending = fetch(`${listener.url}/kv/subscribe/*`);
      for (let i = 0; i < 50 && server.subscriberCount === 0; i++) await tick();
      assert.equal(server.subscriberCount, 1);
      await call(server, "/kv/b", { method: "PUT", body: "v" });
      const response = await pending;
      const reader = response.body!.getReader();
      assert.match((await readChunk(reader)) ?? "", /"key":"b"/);
      await listener.close();
      assert.equal(await readChunk(reader), undefined);
      assert.equal(server.subscriberCount, 0);
    });
  });
});
