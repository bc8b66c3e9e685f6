import assert from "node:assert/strict";
import {
  encodeKey,
  hasPingSuffix,
  historyPath,
  keyPath,
  normalizeKey,
  readPath,
  validateKey,
  validatePrefix,
} from "../src/keys.ts";

Deno.test("normalizeKey", async (t) => {
  const cases: [string, string][] = [
    ["app/config", "app/config"],
    ["/app/config/", "app/config"],
    [" app/config ", "app/config"],
    ["/ a/", "_a"],
    ["my key", "my_key"],
    ["\tkey\n", "key"],
    ["\u0085key\u00A0", "key"],
    ["\u3000key\u2028", "key"],
    ["\uFEFFkey", "\uFEFFkey"],
    ["a//b", "a//b"],
    ["///", ""],
    ["a b c", "a_b_c"],
  ];
  for (const [input, expected] of cases) {
    await t.step(JSON.stringify(input), () => {
      assert.equal(normalizeKey(input), expected);
    });
  }
});

Deno.test("validateKey rejects", async (t) => {
  const cases: [unknown, RegExp][] = [
    ["", /empty/],
    ["   ", /empty/],
    ["/", /empty/],
    [" / ", /empty/],
    [".", /"\."/],
    ["..", /"\.\."/],
    ["a\nb", /control characters/],
    ["a\u0000b", /control characters/],
    ["a\u007Fb", /control characters/],
    ["bad\uD800", /lone UTF-16 surrogate/],
    [42, /expected a string, got number/],
    [null, /got null/],
    [undefined, /got undefined/],
    [["a"], /got an array/],
    [{}, /got object/],
  ];
  for (const [input, message] of cases) {
    await t.step(String(JSON.stringify(input)), () => {
      assert.throws(
        () => validateKey(input),
        (error: Error) =>
          error instanceof TypeError && message.test(error.message),
      );
    });
  }
});

Deno.test("validateKey accepts", () => {
  for (
    const key of ["a", "./a", "a/../b", "50%", "what?", "#tag", "✓", "ping"]
  ) {
    assert.equal(validateKey(key), key);
  }
});

Deno.test("validatePrefix", () => {
  assert.equal(validatePrefix(""), "");
  assert.equal(validatePrefix("app/"), "app/");
  assert.throws(() => validatePrefix(1), TypeError);
  assert.throws(() => validatePrefix("a\rb"), TypeError);
});

Deno.test("keyPath segment encoding table", async (t) => {
  const cases: [string, string][] = [
    ["app/config", "/kv/app%2Fconfig"],
    ["history/x", "/kv/history%2Fx"],
    ["subscribe/x", "/kv/subscribe%2Fx"],
    ["a/../b", "/kv/a%2F..%2Fb"],
    ["a//b", "/kv/a%2F%2Fb"],
    ["50%", "/kv/50%25"],
    ["what?", "/kv/what%3F"],
    ["#tag", "/kv/%23tag"],
    ["✓", "/kv/%E2%9C%93"],
    ["my key", "/kv/my%20key"],
    ["a+b", "/kv/a%2Bb"],
    ["a&b=c", "/kv/a%26b%3Dc"],
    ["ping", "/kv/ping%2F"],
    ["app/ping", "/kv/app%2Fping%2F"],
    ["app/PING", "/kv/app%2FPING%2F"],
    ["app/xping", "/kv/app%2Fxping"],
    ["app/ping/x", "/kv/app%2Fping%2Fx"],
    ["./a", "/kv/.%2Fa"],
    ["😀", "/kv/%F0%9F%98%80"],
    ["a;b,c", "/kv/a%3Bb%2Cc"],
    ["~user", "/kv/~user"],
  ];
  for (const [key, path] of cases) {
    await t.step(key, () => {
      assert.equal(readPath(key, "segment"), path);
      assert.equal(keyPath(key, "segment"), path.replace(/%2F$/, ""));
    });
  }
});

Deno.test("keyPath path encoding", async (t) => {
  await t.step("slashes stay literal", () => {
    assert.equal(keyPath("app/config", "path"), "/kv/app/config");
    assert.equal(keyPath("/app/config/", "path"), "/kv/app/config");
  });
  await t.step("history and subscribe prefixes are escaped", () => {
    assert.equal(keyPath("history/x", "path"), "/kv/history%2Fx");
    assert.equal(keyPath("subscribe/x/y", "path"), "/kv/subscribe%2Fx/y");
  });
  await t.step("segments are encoded", () => {
    assert.equal(keyPath("a b/c?", "path"), "/kv/a%20b/c%3F");
  });
  await t.step("dot and empty segments are rejected", () => {
    for (const key of ["a//b", "a/./b", "a/../b", "../x"]) {
      assert.throws(() => encodeKey(key, "path"), /keyEncoding "path"/);
    }
  });
});

Deno.test("historyPath", () => {
  assert.equal(historyPath("app/h", "segment"), "/kv/history/app%2Fh");
  assert.equal(historyPath("x/ping", "segment"), "/kv/history/x%2Fping%2F");
});

Deno.test("hasPingSuffix", () => {
  assert.equal(hasPingSuffix("ping"), true);
  assert.equal(hasPingSuffix("Ping"), true);
  assert.equal(hasPingSuffix("a/ping"), true);
  assert.equal(hasPingSuffix("aping"), false);
  assert.equal(hasPingSuffix("ping/a"), false);
});
