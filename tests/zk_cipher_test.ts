import assert from "node:assert/strict";
import { DecryptionError } from "../src/errors.ts";
import { decrypt, encrypt, isEncrypted } from "../src/zk/cipher.ts";
import { envelopeLength, parseEnvelope } from "../src/zk/envelope.ts";
import { encodePassphrase } from "../src/zk/passphrase.ts";

const PASSPHRASE = "cipher-test-passphrase";
const encoder = new TextEncoder();

Deno.test("isEncrypted prefix rule", async (t) => {
  const cases: [string, boolean][] = [
    ["$ZK$", false],
    ["$ZK$A", true],
    ["$ZK$not base64 at all", true],
    ["", false],
    ["$ZK", false],
    ["$zk$AAAA", false],
    [" $ZK$AAAA", false],
    ["plain value", false],
  ];
  for (const [value, expected] of cases) {
    await t.step(`string ${JSON.stringify(value)}`, () => {
      assert.equal(isEncrypted(value), expected);
    });
    await t.step(`bytes ${JSON.stringify(value)}`, () => {
      assert.equal(isEncrypted(encoder.encode(value)), expected);
    });
  }
});

Deno.test("envelopeLength formula", async (t) => {
  await t.step("matches 4 + 4 * ceil((n + 44) / 3)", () => {
    for (let n = 0; n < 100; n++) {
      assert.equal(envelopeLength(n), 4 + 4 * Math.ceil((n + 44) / 3));
    }
  });
  await t.step("empty plaintext gives 64 characters", () => {
    assert.equal(envelopeLength(0), 64);
  });
  await t.step("786,385 bytes fill the 1 MiB limit exactly", () => {
    assert.equal(envelopeLength(786_385), 1_048_576);
  });
  await t.step("786,386 bytes exceed it", () => {
    assert.equal(envelopeLength(786_386), 1_048_580);
  });
});

Deno.test("encrypt output shape and round trip", async (t) => {
  await t.step("boundary plaintexts give the formula's length", async () => {
    for (const size of [0, 1, 2, 3, 786_385, 786_386]) {
      const value = await encrypt(new Uint8Array(size), PASSPHRASE);
      assert.equal(value.length, envelopeLength(size), `${size} bytes`);
    }
  });
  await t.step("value starting with $ZK$ is still encrypted", async () => {
    const plaintext = encoder.encode("$ZK$already-looks-encrypted");
    const value = await encrypt(plaintext, PASSPHRASE);
    assert.notEqual(value, "$ZK$already-looks-encrypted");
    assert.equal(value.length, envelopeLength(plaintext.length));
    assert.deepEqual(await decrypt(value, PASSPHRASE), plaintext);
  });
  await t.step("output is canonical padded base64", async () => {
    const value = await encrypt(encoder.encode("x"), PASSPHRASE);
    assert.match(value, /^\$ZK\$[A-Za-z0-9+/]+={0,2}$/);
    assert.equal(value.length % 4, 0);
  });
  await t.step("salt and nonce differ between calls", async () => {
    const first = parseEnvelope(await encrypt(new Uint8Array(1), PASSPHRASE));
    const second = parseEnvelope(await encrypt(new Uint8Array(1), PASSPHRASE));
    assert.notDeepEqual(first.salt, second.salt);
    assert.notDeepEqual(first.nonce, second.nonce);
  });
});

Deno.test("decrypt failure reasons", async (t) => {
  const valid = await encrypt(encoder.encode("payload"), PASSPHRASE);
  const cases: [string, string, RegExp][] = [
    ["missing prefix", "plain", /missing \$ZK\$ prefix/],
    ["bare prefix", "$ZK$", /missing \$ZK\$ prefix/],
    ["bad base64", "$ZK$AAAA*AAA", /invalid base64/],
    ["43-byte payload", "$ZK$" + "A".repeat(58) + "==", /43 bytes/],
    ["truncated", valid.slice(0, valid.length - 8), /authentication failed/],
    ["tampered", tamper(valid), /authentication failed/],
  ];
  for (const [name, value, reason] of cases) {
    await t.step(name, async () => {
      const error = await rejection(decrypt(value, PASSPHRASE));
      assert.ok(error instanceof DecryptionError);
      assert.match(error.reason, reason);
      assert.ok(!error.message.includes(PASSPHRASE));
    });
  }
  await t.step("wrong passphrase", async () => {
    const other = "another-passphrase-here";
    const error = await rejection(decrypt(valid, other));
    assert.ok(error instanceof DecryptionError);
    assert.match(error.reason, /authentication failed/);
    assert.ok(!error.message.includes(other));
    assert.ok(!error.message.includes(PASSPHRASE));
  });
});

Deno.test("passphrase validation counts bytes", async (t) => {
  await t.step("18-byte, 6-character passphrase is accepted", () => {
    assert.equal(encodePassphrase("鍵鍵鍵鍵鍵鍵").length, 18);
  });
  await t.step("16 ASCII bytes are accepted", () => {
    assert.equal(encodePassphrase("exactly-16-bytes").length, 16);
  });
  await t.step("15 bytes are rejected with a bytes message", () => {
    assert.throws(() => encodePassphrase("fifteen-bytes!!"), {
      name: "TypeError",
      message: /at least 16 UTF-8 bytes \(bytes, not characters\), got 15/,
    });
  });
  await t.step("non-string is rejected", () => {
    assert.throws(() => encodePassphrase(12345678901234567890), {
      name: "TypeError",
      message: /must be a string, got number/,
    });
  });
  await t.step("lone surrogate is rejected", () => {
    assert.throws(() => encodePassphrase("long-enough-passphrase\ud800"), {
      name: "TypeError",
      message: /lone surrogate/,
    });
  });
  await t.step("message never contains the passphrase", () => {
    const short = "short-secret";
    assert.throws(
      () => encodePassphrase(short),
      (error: Error) => !error.message.includes(short),
    );
  });
  await t.step("encrypt rejects a short passphrase", async () => {
    const error = await rejection(encrypt(new Uint8Array(1), "too-short"));
    assert.ok(error instanceof TypeError);
  });
});

function tamper(value: string): string {
  const last = value.at(-3) === "A" ? "B" : "A";
  return value.slice(0, -3) + last + value.slice(-2);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected the promise to reject");
}
