import assert from "node:assert/strict";
import { DecryptionError } from "../src/errors.ts";
import { decodeBase64 } from "../src/zk/base64.ts";
import { decrypt, isEncrypted } from "../src/zk/cipher.ts";
import { ZkCodec } from "../src/zk/codec.ts";

interface Vector {
  name: string;
  passphrase: string;
  plaintext_b64?: string;
  value: string;
  expect: "decrypt" | "error" | "not-encrypted";
  note: string;
}

const vectors: Vector[] = JSON.parse(
  await Deno.readTextFile(
    new URL("./fixtures/zk_vectors.json", import.meta.url),
  ),
);

// Values written by the other Stash clients, in the folder beside the
// checkout; STASH_UPSTREAM_FIXTURES names another folder, as the Node run
// does for its compiled copy of this file.
const UPSTREAM_DIR = Deno.env.get("STASH_UPSTREAM_FIXTURES")
  ? new URL(`file://${Deno.env.get("STASH_UPSTREAM_FIXTURES")}/`)
  : new URL("../../shared/fixtures/upstream/", import.meta.url);
const UPSTREAM_PASSPHRASE = "cross-compat-key-16";
const UPSTREAM_CLIENTS = ["go", "python", "typescript", "rust"];

function fromBase64(text: string): Uint8Array {
  return decodeBase64(text);
}

Deno.test("zk vectors by expectation", async (t) => {
  for (const vector of vectors) {
    await t.step(`${vector.name} (${vector.expect})`, async () => {
      const codec = new ZkCodec(vector.passphrase);
      try {
        if (vector.expect === "decrypt") {
          assert.ok(isEncrypted(vector.value));
          const plaintext = await codec.decrypt(vector.value);
          assert.deepEqual(plaintext, fromBase64(vector.plaintext_b64 ?? ""));
        } else if (vector.expect === "error") {
          assert.ok(isEncrypted(vector.value));
          await assert.rejects(codec.decrypt(vector.value), DecryptionError);
        } else {
          assert.equal(isEncrypted(vector.value), false);
        }
      } finally {
        codec.close();
      }
    });
  }
});

Deno.test("zk vectors decrypt as bytes too", async (t) => {
  const vector = vectors.find((entry) => entry.name === "line-breaks");
  assert.ok(vector !== undefined, "vector line-breaks is missing");
  await t.step("line-breaks from Uint8Array", async () => {
    const plaintext = await decrypt(
      new TextEncoder().encode(vector.value),
      vector.passphrase,
    );
    assert.deepEqual(plaintext, fromBase64(vector.plaintext_b64 ?? ""));
  });
});

async function upstreamAvailable(): Promise<boolean> {
  try {
    return (await Deno.stat(UPSTREAM_DIR)).isDirectory;
  } catch {
    return false;
  }
}

Deno.test("zk values from other Stash clients", async (t) => {
  if (!(await upstreamAvailable())) {
    // deno-lint-ignore no-console
    console.log(
      `skipped: upstream fixtures not found at ${UPSTREAM_DIR.pathname}`,
    );
    return;
  }
  const codec = new ZkCodec(UPSTREAM_PASSPHRASE);
  try {
    for (const client of UPSTREAM_CLIENTS) {
      const envelope = await Deno.readFile(
        new URL(`${client}_encrypted.bin`, UPSTREAM_DIR),
      );
      const expected = await Deno.readFile(
        new URL(`${client}_plaintext.txt`, UPSTREAM_DIR),
      );
      await t.step(`${client} value decrypts`, async () => {
        assert.deepEqual(await codec.decrypt(envelope), expected);
      });
      await t.step(`${client} plaintext re-encrypts`, async () => {
        const ours = await codec.encrypt(expected);
        assert.deepEqual(await decrypt(ours, UPSTREAM_PASSPHRASE), expected);
      });
    }
  } finally {
    codec.close();
  }
});
