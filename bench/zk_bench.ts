/**
 * Benchmarks of zero-knowledge encryption: Argon2id derivation paths, and
 * AES-GCM and base64 at value sizes up to the largest that fits the
 * server's 1 MiB limit. Run with
 * `deno bench --allow-read --allow-env bench/zk_bench.ts`; results are in
 * bench/README.md.
 *
 * @module
 */

import { argon2id } from "hash-wasm";
import { ARGON2_PARAMETERS } from "../src/zk/argon2.ts";
import {
  decodeBase64,
  decodeBase64Fallback,
  encodeBase64,
  encodeBase64Fallback,
} from "../src/zk/base64.ts";
import { ZkCodec } from "../src/zk/codec.ts";
import { KeyDeriver } from "../src/zk/kdf.ts";

const PASSWORD = new TextEncoder().encode("bench-passphrase-0001");
const DERIVATION_RUNS = { n: 8, warmup: 2 };

function randomSalt(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(16));
}

Deno.bench("hash-wasm argon2id called directly", {
  group: "argon2id derivation",
  baseline: true,
  ...DERIVATION_RUNS,
}, async () => {
  await argon2id({
    password: PASSWORD,
    salt: randomSalt(),
    ...ARGON2_PARAMETERS,
    outputType: "binary",
  });
});

const inlineDeriver = new KeyDeriver({ maxConcurrent: 2, worker: false });
Deno.bench("KeyDeriver on the calling thread", {
  group: "argon2id derivation",
  ...DERIVATION_RUNS,
}, async () => {
  await inlineDeriver.derive(PASSWORD, randomSalt());
});

const workerDeriver = new KeyDeriver({ maxConcurrent: 2, worker: true });
Deno.bench("KeyDeriver in a worker per derivation", {
  group: "argon2id derivation",
  ...DERIVATION_RUNS,
}, async () => {
  await workerDeriver.derive(PASSWORD, randomSalt());
});

const SIZES: [string, number][] = [
  ["1 KiB", 1024],
  ["64 KiB", 65_536],
  ["768 KiB", 786_385],
];

const codec = new ZkCodec("bench-passphrase-0001", { worker: false });
const rawKey = await crypto.subtle.generateKey(
  { name: "AES-GCM", length: 256 },
  false,
  ["encrypt", "decrypt"],
);

for (const [label, size] of SIZES) {
  const plaintext = fillRandom(new Uint8Array(size));
  const envelope = await codec.encrypt(plaintext);
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce },
    rawKey,
    plaintext,
  );
  const text = encodeBase64(plaintext);

  Deno.bench(`crypto.subtle.encrypt ${label}`, {
    group: `encrypt ${label}`,
    baseline: true,
  }, async () => {
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: nonce },
      rawKey,
      plaintext,
    );
  });
  Deno.bench(`ZkCodec.encrypt ${label} (cached key)`, {
    group: `encrypt ${label}`,
  }, async () => {
    await codec.encrypt(plaintext);
  });

  Deno.bench(`crypto.subtle.decrypt ${label}`, {
    group: `decrypt ${label}`,
    baseline: true,
  }, async () => {
    await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce }, rawKey, sealed);
  });
  Deno.bench(`ZkCodec.decrypt ${label} (cached key)`, {
    group: `decrypt ${label}`,
  }, async () => {
    await codec.decrypt(envelope);
  });

  Deno.bench(`native encodeBase64 ${label}`, {
    group: `base64 encode ${label}`,
    baseline: true,
  }, () => {
    encodeBase64(plaintext);
  });
  Deno.bench(`fallback encodeBase64 ${label}`, {
    group: `base64 encode ${label}`,
  }, () => {
    encodeBase64Fallback(plaintext);
  });

  Deno.bench(`native decodeBase64 ${label}`, {
    group: `base64 decode ${label}`,
    baseline: true,
  }, () => {
    decodeBase64(text);
  });
  Deno.bench(`fallback decodeBase64 ${label}`, {
    group: `base64 decode ${label}`,
  }, () => {
    decodeBase64Fallback(text);
  });
}

/** Fills an array of any size; getRandomValues takes at most 65,536 bytes. */
function fillRandom(
  bytes: Uint8Array<ArrayBuffer>,
): Uint8Array<ArrayBuffer> {
  for (let offset = 0; offset < bytes.length; offset += 65_536) {
    crypto.getRandomValues(bytes.subarray(offset, offset + 65_536));
  }
  return bytes;
}
