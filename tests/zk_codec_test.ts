import assert from "node:assert/strict";
import { ClosedError, DecryptionError } from "../src/errors.ts";
import { deriveKeyBytesInline } from "../src/zk/argon2.ts";
import { encodeBase64 } from "../src/zk/base64.ts";
import { ZkCodec, type ZkCodecOptions } from "../src/zk/codec.ts";
import { parseEnvelope } from "../src/zk/envelope.ts";
import { WorkerKeyDeriver } from "../src/zk/kdf_workers.ts";

const PASSPHRASE = "codec-test-passphrase-0001";
const encoder = new TextEncoder();

/** A fast stand-in for Argon2id: SHA-256 of password || salt, with call records. */
class FakeDerive {
  calls = 0;
  inFlight = 0;
  maxInFlight = 0;
  passwords: Uint8Array[] = [];
  #gates: (() => void)[] = [];
  #held: boolean;

  constructor(options: { hold?: boolean } = {}) {
    this.#held = options.hold ?? false;
  }

  derive = async (
    password: Uint8Array,
    salt: Uint8Array,
  ): Promise<Uint8Array> => {
    this.calls++;
    this.passwords.push(password);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    if (this.#held) await new Promise<void>((open) => this.#gates.push(open));
    const input = new Uint8Array([...password, ...salt]);
    const digest = await crypto.subtle.digest("SHA-256", input);
    this.inFlight--;
    return new Uint8Array(digest);
  };

  /** Lets every held derivation continue, until none is waiting. */
  async releaseAll(): Promise<void> {
    for (let round = 0; round < 1000; round++) {
      await flush();
      const gates = this.#gates.splice(0);
      if (gates.length === 0 && this.inFlight === 0) return;
      for (const open of gates) open();
    }
    assert.fail("derivations did not finish within 1,000 rounds");
  }

  get waiting(): number {
    return this.#gates.length;
  }
}

function codecWith(
  fake: FakeDerive,
  options: ZkCodecOptions = {},
): ZkCodec {
  return new ZkCodec(PASSPHRASE, { ...options, deriveKeyBytes: fake.derive });
}

/** Lets pending promise callbacks and WebCrypto operations run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) {
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
  }
}

function saltOf(envelope: Uint8Array): string {
  return encodeBase64(parseEnvelope(envelope).salt);
}

Deno.test("ZkCodec key cache", async (t) => {
  await t.step("second decrypt runs no derivation", async () => {
    const writerFake = new FakeDerive();
    const writer = codecWith(writerFake);
    const envelope = await writer.encrypt(encoder.encode("value"));
    writer.close();
    const fake = new FakeDerive();
    const codec = codecWith(fake);
    assert.deepEqual(await codec.decrypt(envelope), encoder.encode("value"));
    assert.deepEqual(await codec.decrypt(envelope), encoder.encode("value"));
    assert.equal(fake.calls, 1);
    codec.close();
  });
  await t.step("reading own writes runs no derivation", async () => {
    const fake = new FakeDerive();
    const codec = codecWith(fake);
    const envelope = await codec.encrypt(encoder.encode("mine"));
    assert.equal(fake.calls, 1);
    assert.deepEqual(await codec.decrypt(envelope), encoder.encode("mine"));
    assert.equal(fake.calls, 1);
    codec.close();
  });
  await t.step("least recently used key is evicted", async () => {
    const writer = codecWith(new FakeDerive(), { saltPerValue: true });
    const values = [];
    for (let i = 0; i < 3; i++) {
      values.push(await writer.encrypt(encoder.encode(`v${i}`)));
    }
    writer.close();
    const [a, b, c] = values as [Uint8Array, Uint8Array, Uint8Array];
    const fake = new FakeDerive();
    const codec = codecWith(fake, { cacheSize: 2 });
    await codec.decrypt(a);
    await codec.decrypt(b);
    await codec.decrypt(a);
    await codec.decrypt(c);
    assert.equal(fake.calls, 3);
    await codec.decrypt(a);
    assert.equal(fake.calls, 3, "a was used recently and stays");
    await codec.decrypt(b);
    assert.equal(fake.calls, 4, "b was evicted");
    codec.close();
  });
  await t.step("cacheSize 0 derives every time", async () => {
    const fake = new FakeDerive();
    const codec = codecWith(fake, { cacheSize: 0, saltPerValue: true });
    const envelope = await codec.encrypt(encoder.encode("x"));
    await codec.decrypt(envelope);
    await codec.decrypt(envelope);
    assert.equal(fake.calls, 3);
    codec.close();
  });
});

Deno.test("ZkCodec write salt", async (t) => {
  await t.step("writes reuse one salt", async () => {
    const fake = new FakeDerive();
    const codec = codecWith(fake);
    const first = await codec.encrypt(encoder.encode("a"));
    const second = await codec.encrypt(encoder.encode("b"));
    assert.equal(saltOf(first), saltOf(second));
    assert.notDeepEqual(
      parseEnvelope(first).nonce,
      parseEnvelope(second).nonce,
    );
    assert.equal(fake.calls, 1);
    codec.close();
  });
  await t.step("salt rotates after rotateAfter values", async () => {
    const fake = new FakeDerive();
    const codec = codecWith(fake, { rotateAfter: 3 });
    const salts = [];
    for (let i = 0; i < 7; i++) {
      salts.push(saltOf(await codec.encrypt(encoder.encode(`${i}`))));
      // Lets the prefetched key of the next salt finish deriving.
      await flush();
    }
    assert.equal(new Set(salts.slice(0, 3)).size, 1);
    assert.equal(new Set(salts.slice(3, 6)).size, 1);
    assert.notEqual(salts[0], salts[3]);
    assert.notEqual(salts[3], salts[6]);
    assert.equal(fake.calls, 3);
    codec.close();
  });
  await t.step("next write key is derived before rotation", async () => {
    const fake = new FakeDerive();
    const codec = codecWith(fake, { rotateAfter: 20 });
    const salts = [];
    for (let i = 0; i < 18; i++) {
      salts.push(saltOf(await codec.encrypt(encoder.encode(`${i}`))));
    }
    assert.equal(fake.calls, 1);
    salts.push(saltOf(await codec.encrypt(encoder.encode("19th"))));
    await flush();
    assert.equal(fake.calls, 2, "the 19th write starts the next derivation");
    await flush();
    salts.push(saltOf(await codec.encrypt(encoder.encode("20th"))));
    salts.push(saltOf(await codec.encrypt(encoder.encode("21st"))));
    assert.equal(fake.calls, 2, "rotation reuses the prefetched key");
    assert.equal(new Set(salts.slice(0, 20)).size, 1);
    assert.notEqual(salts[20], salts[0]);
    codec.close();
  });
  await t.step("writes keep the salt while the next key derives", async () => {
    const fake = new FakeDerive({ hold: true });
    const codec = codecWith(fake, { rotateAfter: 2 });
    const first = codec.encrypt(encoder.encode("0"));
    await fake.releaseAll();
    const salt = saltOf(await first);
    // The second write starts the prefetch, which stays held.
    const salts = [saltOf(await codec.encrypt(encoder.encode("1")))];
    await flush();
    assert.equal(fake.waiting, 1);
    salts.push(saltOf(await codec.encrypt(encoder.encode("2"))));
    salts.push(saltOf(await codec.encrypt(encoder.encode("3"))));
    assert.deepEqual(salts, [salt, salt, salt], "up to twice rotateAfter");
    const fifth = codec.encrypt(encoder.encode("4"));
    await fake.releaseAll();
    assert.notEqual(saltOf(await fifth), salt, "then it waits for the new key");
    assert.equal(fake.calls, 2);
    codec.close();
  });
  await t.step("failed prefetch is derived again on rotation", async () => {
    let calls = 0;
    const fake = new FakeDerive();
    const codec = new ZkCodec(PASSPHRASE, {
      rotateAfter: 2,
      deriveKeyBytes: (password, salt) => {
        calls++;
        if (calls === 2) return Promise.reject(new Error("worker died"));
        return fake.derive(password, salt);
      },
    });
    await codec.encrypt(encoder.encode("a"));
    await codec.encrypt(encoder.encode("b"));
    await flush();
    const envelope = await codec.encrypt(encoder.encode("d"));
    assert.equal(calls, 3);
    assert.equal(
      new TextDecoder().decode(await codec.decrypt(envelope)),
      "d",
    );
    codec.close();
  });
  await t.step("concurrent first writes share one derivation", async () => {
    const fake = new FakeDerive({ hold: true });
    const codec = codecWith(fake);
    const writes = Array.from(
      { length: 5 },
      (_, i) => codec.encrypt(encoder.encode(`${i}`)),
    );
    await fake.releaseAll();
    const salts = new Set((await Promise.all(writes)).map(saltOf));
    assert.equal(salts.size, 1);
    assert.equal(fake.calls, 1);
    codec.close();
  });
  await t.step("saltPerValue derives a salt per value", async () => {
    const fake = new FakeDerive();
    const codec = codecWith(fake, { saltPerValue: true });
    const first = await codec.encrypt(encoder.encode("a"));
    const second = await codec.encrypt(encoder.encode("b"));
    assert.notEqual(saltOf(first), saltOf(second));
    assert.equal(fake.calls, 2);
    await codec.decrypt(first);
    await codec.decrypt(second);
    assert.equal(fake.calls, 2, "own writes are cached");
    codec.close();
  });
  await t.step("failed write derivation is retried", async () => {
    let failures = 1;
    const fake = new FakeDerive();
    const codec = new ZkCodec(PASSPHRASE, {
      deriveKeyBytes: (password, salt) => {
        if (failures-- > 0) return Promise.reject(new Error("out of memory"));
        return fake.derive(password, salt);
      },
    });
    await assert.rejects(codec.encrypt(encoder.encode("a")), /out of memory/);
    const envelope = await codec.encrypt(encoder.encode("a"));
    assert.deepEqual(await codec.decrypt(envelope), encoder.encode("a"));
    codec.close();
  });
});

Deno.test("ZkCodec derivation scheduling", async (t) => {
  const writer = codecWith(new FakeDerive(), { saltPerValue: true });
  const distinct: Uint8Array[] = [];
  for (let i = 0; i < 10; i++) {
    distinct.push(await writer.encrypt(encoder.encode(`value ${i}`)));
  }
  writer.close();

  await t.step("same salt is derived once (single flight)", async () => {
    const fake = new FakeDerive({ hold: true });
    const codec = codecWith(fake);
    const reads = Array.from({ length: 8 }, () => codec.decrypt(distinct[0]!));
    await fake.releaseAll();
    for (const plaintext of await Promise.all(reads)) {
      assert.deepEqual(plaintext, encoder.encode("value 0"));
    }
    assert.equal(fake.calls, 1);
    codec.close();
  });
  await t.step("distinct salts run at most 2 at once", async () => {
    const fake = new FakeDerive({ hold: true });
    const codec = codecWith(fake);
    const reads = distinct.map((envelope) => codec.decrypt(envelope));
    await flush();
    assert.equal(fake.waiting, 2);
    await fake.releaseAll();
    await Promise.all(reads);
    assert.equal(fake.calls, 10);
    assert.equal(fake.maxInFlight, 2);
    codec.close();
  });
  await t.step("maxConcurrentDerivations sets the bound", async () => {
    const fake = new FakeDerive({ hold: true });
    const codec = codecWith(fake, { maxConcurrentDerivations: 3 });
    const reads = distinct.map((envelope) => codec.decrypt(envelope));
    await fake.releaseAll();
    await Promise.all(reads);
    assert.equal(fake.maxInFlight, 3);
    codec.close();
  });
});

Deno.test("ZkCodec close", async (t) => {
  await t.step("calls after close reject with ClosedError", async () => {
    const fake = new FakeDerive();
    const codec = codecWith(fake);
    const envelope = await codec.encrypt(encoder.encode("a"));
    codec.close();
    assert.equal(codec.closed, true);
    await assert.rejects(codec.encrypt(encoder.encode("b")), ClosedError);
    await assert.rejects(codec.decrypt(envelope), ClosedError);
    assert.equal(fake.calls, 1);
  });
  await t.step("close is idempotent", () => {
    const codec = codecWith(new FakeDerive());
    codec.close();
    codec.close();
    assert.equal(codec.closed, true);
  });
  await t.step("pending calls reject and derive nothing more", async () => {
    const fake = new FakeDerive({ hold: true });
    const codec = codecWith(fake, { saltPerValue: true });
    const writes = Array.from(
      { length: 4 },
      (_, i) => codec.encrypt(encoder.encode(`${i}`)),
    );
    const outcomes = writes.map((write) => write.then(() => "ok", (e) => e));
    await flush();
    assert.equal(fake.calls, 2);
    codec.close();
    await fake.releaseAll();
    for (const outcome of await Promise.all(outcomes)) {
      assert.ok(outcome instanceof ClosedError);
    }
    assert.equal(fake.calls, 2, "queued derivations never started");
  });
  await t.step("passphrase copies are zeroed", async () => {
    const fake = new FakeDerive();
    const codec = codecWith(fake, { saltPerValue: true });
    await codec.encrypt(encoder.encode("a"));
    await codec.encrypt(encoder.encode("b"));
    codec.close();
    assert.equal(fake.passwords.length, 2);
    for (const copy of fake.passwords) {
      assert.ok(copy.every((byte) => byte === 0));
    }
  });
  await t.step("ClosedError names the key", async () => {
    const codec = codecWith(new FakeDerive());
    codec.close();
    const error = await codec.decrypt("$ZK$AAAA", { key: "app/db" }).catch((
      e,
    ) => e);
    assert.ok(error instanceof ClosedError);
    assert.equal(error.key, "app/db");
  });
});

Deno.test("ZkCodec errors and validation", async (t) => {
  await t.step("DecryptionError carries the key", async () => {
    const codec = codecWith(new FakeDerive());
    const error = await codec.decrypt("$ZK$!!!!", { key: "app/db" }).catch((
      e,
    ) => e);
    assert.ok(error instanceof DecryptionError);
    assert.equal(error.key, "app/db");
    assert.equal(error.reason, "invalid base64");
    assert.match(error.message, /"app\/db"/);
    codec.close();
  });
  await t.step("wrong passphrase fails authentication", async () => {
    const writer = codecWith(new FakeDerive());
    const envelope = await writer.encrypt(encoder.encode("a"));
    writer.close();
    const other = new ZkCodec("some-other-passphrase", {
      deriveKeyBytes: new FakeDerive().derive,
    });
    await assert.rejects(other.decrypt(envelope), {
      name: "DecryptionError",
      reason: /authentication failed/,
    });
    other.close();
  });
  await t.step("short passphrase is a TypeError about bytes", () => {
    assert.throws(() => new ZkCodec("ключ-пар"), {
      name: "TypeError",
      message: /16 UTF-8 bytes \(bytes, not characters\)/,
    });
  });
  await t.step("multibyte passphrase of 21 bytes is accepted", () => {
    new ZkCodec("ключ-пароль", { worker: false }).close();
  });
  await t.step("non-string passphrase is a TypeError", () => {
    const passphrase = undefined as unknown as string;
    assert.throws(() => new ZkCodec(passphrase), TypeError);
  });
  await t.step("invalid options are rejected", () => {
    const cases: [ZkCodecOptions, ErrorConstructor][] = [
      [{ cacheSize: -1 }, RangeError],
      [{ cacheSize: 1.5 }, RangeError],
      [{ rotateAfter: 0 }, RangeError],
      [{ rotateAfter: 2 ** 32 + 1 }, RangeError],
      [{ maxConcurrentDerivations: 0 }, RangeError],
      [{ cacheSize: "64" as unknown as number }, TypeError],
      [{ worker: "yes" as unknown as boolean }, TypeError],
      [{ saltPerValue: 1 as unknown as boolean }, TypeError],
    ];
    for (const [options, type] of cases) {
      assert.throws(() => new ZkCodec(PASSPHRASE, options), type);
    }
  });
  await t.step("non-bytes plaintext is a TypeError", async () => {
    const codec = codecWith(new FakeDerive());
    const text = "plain" as unknown as Uint8Array;
    await assert.rejects(codec.encrypt(text), TypeError);
    codec.close();
  });
});

Deno.test("ZkCodec redaction", async (t) => {
  const codec = codecWith(new FakeDerive());
  const outputs: [string, string][] = [
    ["Deno.inspect", Deno.inspect(codec)],
    ["Deno.inspect nested", Deno.inspect({ codec }, { depth: 5 })],
    ["JSON.stringify", JSON.stringify({ codec })],
    ["String", String(codec)],
    ["template", `${codec}`],
    [
      "nodejs inspect symbol",
      String(
        (codec as unknown as Record<symbol, () => string>)[
          Symbol.for("nodejs.util.inspect.custom")
        ]!(),
      ),
    ],
  ];
  for (const [name, output] of outputs) {
    await t.step(`${name} hides the passphrase`, () => {
      assert.ok(!output.includes(PASSPHRASE), output);
      assert.match(output, /redacted/);
    });
  }
  codec.close();
});

Deno.test("ZkCodec derivation paths", async (t) => {
  const salt = new Uint8Array(16).fill(7);
  const password = encoder.encode(PASSPHRASE);
  const expected = await deriveKeyBytesInline(password, salt);

  await t.step(
    "worker derives the same key as the calling thread",
    async () => {
      const deriver = new WorkerKeyDeriver();
      const key = await deriver.derive(password, salt);
      assert.deepEqual(key, expected);
      assert.deepEqual(password, encoder.encode(PASSPHRASE), "input untouched");
    },
  );
  for (const worker of [true, false, "auto"] as const) {
    await t.step(`worker: ${worker} round-trips`, async () => {
      const codec = new ZkCodec(PASSPHRASE, { worker, saltPerValue: true });
      const envelope = await codec.encrypt(encoder.encode("path"));
      codec.close();
      const reader = new ZkCodec(PASSPHRASE, { worker });
      assert.deepEqual(await reader.decrypt(envelope), encoder.encode("path"));
      reader.close();
    });
  }
  await t.step({
    name: "closing during a worker derivation rejects",
    ignore: typeof Worker === "undefined",
    fn: async () => {
      const codec = new ZkCodec(PASSPHRASE, { worker: true });
      const write = codec.encrypt(encoder.encode("late"));
      await new Promise<void>((resolve) => setTimeout(resolve, 0));
      codec.close();
      await assert.rejects(write, ClosedError);
    },
  });
});

Deno.test("calling-thread derivations let timers run between them", async () => {
  const order: string[] = [];
  let calls = 0;
  const fake = new FakeDerive();
  const codec = new ZkCodec(PASSPHRASE, {
    worker: false,
    saltPerValue: true,
    maxConcurrentDerivations: 1,
    deriveKeyBytes: async (password, salt) => {
      const call = ++calls;
      order.push(`derive ${call}`);
      // Due as soon as this derivation ends.
      if (call === 1) setTimeout(() => order.push("timer"), 0);
      return await fake.derive(password, salt);
    },
  });
  const writes = [
    codec.encrypt(encoder.encode("1")),
    codec.encrypt(encoder.encode("2")),
  ];
  await Promise.all(writes);
  codec.close();
  assert.deepEqual(order, ["derive 1", "timer", "derive 2"]);
});

Deno.test({
  name: "required worker without read permission names it",
  ignore: typeof Worker === "undefined",
  permissions: { read: false },
  fn: async () => {
    const codec = new ZkCodec(PASSPHRASE, { worker: true });
    await assert.rejects(
      codec.encrypt(encoder.encode("x")),
      (error: Error) =>
        /--allow-read/.test(error.message) &&
        /No read permission/.test(error.message),
    );
    codec.close();
  },
});
