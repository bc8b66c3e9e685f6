// deno-lint-ignore-file no-console -- skipped tests print why

import assert from "node:assert/strict";
import {
  Client,
  type ClientOptions,
  ClosedError,
  DecryptionError,
  PayloadTooLargeError,
} from "../mod.ts";
import { createStashServer, type StashServer } from "../testing.ts";

const PASSPHRASE = "client zk passphrase 0123";
const UPSTREAM_DIR = Deno.env.get("STASH_UPSTREAM_FIXTURES")
  ? new URL(`file://${Deno.env.get("STASH_UPSTREAM_FIXTURES")}/`)
  : new URL("../../shared/fixtures/upstream/", import.meta.url);

function zkClient(server: StashServer, options: ClientOptions = {}): Client {
  return new Client("http://stash.test", {
    fetch: server.fetch,
    zkKey: PASSPHRASE,
    retries: 0,
    ...options,
  });
}

function stored(server: StashServer, key: string): string {
  return new TextDecoder().decode(server.getRaw(key));
}

Deno.test("client zero-knowledge reads and writes", async (t) => {
  const server = createStashServer({ history: true });
  await using client = zkClient(server);

  await t.step("stored bytes are an envelope", async () => {
    await client.set("z/text", "secret text");
    const raw = stored(server, "z/text");
    assert.ok(raw.startsWith("$ZK$"), raw);
    assert.ok(!raw.includes("secret text"));
    assert.equal(await client.get("z/text"), "secret text");
  });

  await t.step("value that looks encrypted is encrypted again", async () => {
    const lookalike = "$ZK$not really a ciphertext";
    await client.set("z/lookalike", lookalike);
    assert.notEqual(stored(server, "z/lookalike"), lookalike);
    assert.equal(await client.get("z/lookalike"), lookalike);
  });

  await t.step("bytes, JSON and defaults decrypt", async () => {
    const bytes = new Uint8Array([0, 255, 1, 254]);
    await client.set("z/bytes", bytes);
    assert.deepEqual(await client.getBytes("z/bytes"), bytes);
    await client.setJson("z/json", { a: 1 });
    assert.deepEqual(await client.getJson("z/json"), { a: 1 });
    assert.equal(await client.getOrDefault("z/json", "x"), '{"a":1}');
    assert.equal(await client.getOrDefault("z/none", "x"), "x");
  });

  await t.step("plaintext values are returned unchanged", async () => {
    server.put("z/plain", "written without encryption");
    assert.equal(await client.get("z/plain"), "written without encryption");
  });

  await t.step("history entries decrypt", async () => {
    await client.set("z/history", "first");
    await client.set("z/history", "second");
    await client.delete("z/history");
    const entries = await client.history("z/history");
    const values = entries.map((entry) =>
      new TextDecoder().decode(entry.value)
    );
    assert.deepEqual(values, ["", "second", "first"]);
    assert.equal(entries[0]?.operation, "delete");
  });

  await t.step(
    "tampered value is a DecryptionError naming the key",
    async () => {
      const envelope = stored(server, "z/text");
      // Replaces one base64 character inside the ciphertext.
      const middle = 40;
      const replacement = envelope[middle] === "A" ? "B" : "A";
      const flipped = envelope.slice(0, middle) + replacement +
        envelope.slice(middle + 1);
      server.put("z/tampered", flipped);
      const error = await client.get("z/tampered").catch((e) => e);
      assert.ok(error instanceof DecryptionError);
      assert.equal(error.key, "z/tampered");
      assert.match(error.message, /"z\/tampered"/);
      assert.ok(!error.message.includes(PASSPHRASE));
    },
  );

  await t.step("wrong passphrase is a DecryptionError", async () => {
    await using other = zkClient(server, {
      zkKey: "a different passphrase 0123",
    });
    const error = await other.get("z/text").catch((e) => e);
    assert.ok(error instanceof DecryptionError);
    assert.match(error.reason, /authentication failed/);
  });

  await server.close();
});

Deno.test("requireEncryption rejects plaintext", async () => {
  const server = createStashServer();
  await using strict = zkClient(server, { requireEncryption: true });
  server.put("swapped", "plaintext put there by the server");
  const error = await strict.get("swapped").catch((e) => e);
  assert.ok(error instanceof DecryptionError);
  assert.equal(error.key, "swapped");
  assert.equal(error.reason, "not encrypted");
  await assert.rejects(strict.getOrDefault("swapped", "x"), DecryptionError);
  await strict.set("fine", "ok");
  assert.equal(await strict.get("fine"), "ok");
});

Deno.test("envelope size limit is checked before sending", async () => {
  const server = createStashServer();
  await using client = zkClient(server);
  await client.set("big/fits", new Uint8Array(786_385));
  assert.equal(server.getRaw("big/fits")?.length, 1_048_576);
  const before = server.requests.length;
  const error = await client.set("big/over", new Uint8Array(786_386)).catch((
    e,
  ) => e);
  assert.ok(error instanceof PayloadTooLargeError);
  assert.equal(error.size, 1_048_580);
  assert.match(error.message, /encrypted value/);
  assert.equal(server.requests.length, before);
});

Deno.test("closed client sends no plaintext", async () => {
  const server = createStashServer();
  const client = zkClient(server);
  await client.set("k", "v");
  await client.close();
  const before = server.requests.length;
  await assert.rejects(client.set("k", "later"), ClosedError);
  await assert.rejects(client.get("k"), ClosedError);
  assert.equal(server.requests.length, before);
});

Deno.test("values written by other Stash clients", async (t) => {
  let present = false;
  try {
    present = (await Deno.stat(UPSTREAM_DIR)).isDirectory;
  } catch {
    present = false;
  }
  if (!present) {
    console.log(
      `skipped: upstream fixtures not found at ${UPSTREAM_DIR.pathname}`,
    );
    return;
  }
  const server = createStashServer();
  await using client = zkClient(server, { zkKey: "cross-compat-key-16" });
  for (const name of ["go", "python", "typescript", "rust"]) {
    await t.step(name, async () => {
      const envelope = await Deno.readFile(
        new URL(`${name}_encrypted.bin`, UPSTREAM_DIR),
      );
      const plaintext = await Deno.readTextFile(
        new URL(`${name}_plaintext.txt`, UPSTREAM_DIR),
      );
      server.put(`upstream/${name}`, envelope);
      assert.equal(await client.get(`upstream/${name}`), plaintext);
    });
  }
});
