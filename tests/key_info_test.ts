import assert from "node:assert/strict";
import {
  parseHistory,
  parseKeyInfo,
  parseKeyList,
  parseTimestamp,
} from "../src/key_info.ts";
import { StashError } from "../src/errors.ts";

const encode = (text: string) => new TextEncoder().encode(text);

Deno.test("parseTimestamp fraction digits", async (t) => {
  const cases: [string, string][] = [
    ["2026-12-03T21:52:36Z", "2026-12-03T21:52:36.000Z"],
    ["2026-12-03T21:52:36.5Z", "2026-12-03T21:52:36.500Z"],
    ["2026-12-03T21:52:36.55Z", "2026-12-03T21:52:36.550Z"],
    ["2026-12-03T21:52:36.558Z", "2026-12-03T21:52:36.558Z"],
    ["2026-12-03T21:52:36.5583Z", "2026-12-03T21:52:36.558Z"],
    ["2026-12-03T21:52:36.558363724Z", "2026-12-03T21:52:36.558Z"],
    ["2026-12-03T23:52:36.1+02:00", "2026-12-03T21:52:36.100Z"],
    ["2026-12-03t21:52:36z", "2026-12-03T21:52:36.000Z"],
  ];
  for (const [input, expected] of cases) {
    await t.step(input, () => {
      assert.equal(parseTimestamp(input, "created_at").toISOString(), expected);
    });
  }
});

Deno.test("parseTimestamp rejects", () => {
  for (
    const input of [
      "",
      "2026-12-03",
      "2026-12-03T21:52:36",
      "2026-12-03T21:52:36.1234567890Z",
      "2026-13-03T21:52:36Z",
      "yesterday",
      42,
      null,
    ]
  ) {
    assert.throws(
      () => parseTimestamp(input, "updated_at"),
      (error: Error) =>
        error instanceof StashError && /updated_at/.test(error.message),
      String(input),
    );
  }
});

Deno.test("parseKeyInfo spellings", async (t) => {
  await t.step("snake_case from current servers", () => {
    const info = parseKeyInfo({
      key: "app/config",
      size: 15,
      format: "json",
      secret: false,
      zk_encrypted: true,
      created_at: "2026-12-03T21:52:36.558363724Z",
      updated_at: "2026-12-03T21:53:58.1Z",
    });
    assert.equal(info.key, "app/config");
    assert.equal(info.size, 15);
    assert.equal(info.format, "json");
    assert.equal(info.secret, false);
    assert.equal(info.zkEncrypted, true);
    assert.equal(info.updatedAt.toISOString(), "2026-12-03T21:53:58.100Z");
  });

  await t.step("PascalCase from v0.13.0", () => {
    const info = parseKeyInfo({
      Key: "app/config",
      Size: 0,
      Format: "text",
      CreatedAt: "2026-12-03T21:52:36Z",
      UpdatedAt: "2026-12-03T21:52:36Z",
    });
    assert.equal(info.key, "app/config");
    assert.equal(info.size, 0);
    assert.equal("secret" in info, false);
    assert.equal("zkEncrypted" in info, false);
  });

  await t.step("invalid entries", () => {
    const good = {
      key: "k",
      size: 1,
      format: "text",
      created_at: "2026-12-03T21:52:36Z",
      updated_at: "2026-12-03T21:52:36Z",
    };
    for (
      const entry of [
        null,
        "k",
        [],
        { ...good, key: 1 },
        { ...good, size: -1 },
        { ...good, size: 1.5 },
        { ...good, size: "1" },
        { ...good, format: null },
        { ...good, created_at: undefined },
      ]
    ) {
      assert.throws(
        () => parseKeyInfo(entry),
        StashError,
        JSON.stringify(entry),
      );
    }
  });
});

Deno.test("parseKeyList bodies", () => {
  assert.deepEqual(parseKeyList(encode("null\n")), []);
  assert.deepEqual(parseKeyList(encode("[]")), []);
  assert.throws(() => parseKeyList(encode("{}")), /JSON array or null/);
  assert.throws(() => parseKeyList(encode('[{"key":')), /not valid JSON/);
  assert.throws(() => parseKeyList(encode("<html>")), /not valid JSON/);
});

Deno.test("parseHistory bodies", () => {
  const entries = parseHistory(encode(JSON.stringify([{
    hash: "978fded",
    timestamp: "2026-12-03T21:53:58Z",
    author: "token:admin-0b",
    operation: "delete",
    format: "json",
  }])));
  assert.equal(entries.length, 1);
  assert.equal(entries[0]?.value, "");
  assert.equal(entries[0]?.operation, "delete");
  assert.deepEqual(parseHistory(encode("[]")), []);
  assert.throws(() => parseHistory(encode('{"error":"x"}')), /JSON array/);
  assert.throws(
    () => parseHistory(encode('[{"hash":1}]')),
    /hash must be a string/,
  );
});
