/**
 * Zero-knowledge encryption of single values, compatible with every Stash
 * client: `encrypt`, `decrypt` and `isEncrypted` for direct use without a
 * client. Each call runs a full Argon2id derivation (64 MiB); a client with
 * a passphrase caches derived keys instead.
 *
 * The envelope is `"$ZK$" + base64(salt[16] || nonce[12] || ciphertext ||
 * tag[16])`, with an AES-256-GCM key derived by Argon2id v0x13 (t=1,
 * m=64 MiB, p=4) from the passphrase's UTF-8 bytes and the salt.
 *
 * @example Round trip
 * ```ts
 * import { decrypt, encrypt, isEncrypted } from "./cipher.ts";
 * import assert from "node:assert/strict";
 *
 * const passphrase = "correct horse battery staple";
 * const value = await encrypt(new TextEncoder().encode("hi"), passphrase);
 * assert.ok(isEncrypted(value));
 * const plaintext = await decrypt(value, passphrase);
 * assert.equal(new TextDecoder().decode(plaintext), "hi");
 * ```
 *
 * @module
 */

import { ZkCodec } from "./codec.ts";

export { isEncrypted } from "./envelope.ts";

/**
 * Encrypts a plaintext into a `$ZK$` value with a fresh salt and nonce.
 * Plaintexts that already start with `$ZK$` are encrypted too.
 *
 * @param plaintext The bytes to encrypt.
 * @param passphrase At least 16 UTF-8 bytes.
 * @returns The envelope text.
 * @throws {TypeError} The passphrase is not a string of at least 16 UTF-8 bytes.
 */
export async function encrypt(
  plaintext: Uint8Array,
  passphrase: string,
): Promise<string> {
  const codec = new ZkCodec(passphrase, { saltPerValue: true, cacheSize: 0 });
  try {
    return new TextDecoder().decode(await codec.encrypt(plaintext));
  } finally {
    codec.close();
  }
}

/**
 * Decrypts a `$ZK$` value written by any Stash client. The base64 is read
 * leniently: ASCII whitespace and missing padding are accepted.
 *
 * @param value The stored value, as text or bytes.
 * @param passphrase The passphrase it was written with.
 * @returns The plaintext.
 * @throws {DecryptionError} Wrong passphrase, tampered, truncated or
 * malformed value; the message never contains the passphrase.
 * @throws {TypeError} The passphrase is not a string of at least 16 UTF-8 bytes.
 */
export async function decrypt(
  value: string | Uint8Array,
  passphrase: string,
): Promise<Uint8Array> {
  const codec = new ZkCodec(passphrase, { cacheSize: 0 });
  try {
    return await codec.decrypt(value);
  } finally {
    codec.close();
  }
}
