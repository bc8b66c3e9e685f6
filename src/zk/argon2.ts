/**
 * Argon2id key derivation for zero-knowledge values, run through
 * `hash-wasm` on the calling thread.
 *
 * @module
 */

import { argon2id } from "hash-wasm";

/** Argon2id parameters that every Stash client uses: v0x13, t=1, 64 MiB, p=4. */
export const ARGON2_PARAMETERS = {
  iterations: 1,
  memorySize: 65_536,
  parallelism: 4,
  hashLength: 32,
} as const;

/** Length in bytes of the salt stored in every envelope. */
export const SALT_LENGTH = 16;

/**
 * Derives the 32-byte AES-256 key for a passphrase and salt on the calling
 * thread. It blocks the event loop for the whole derivation (about 150 ms on
 * one AMD EPYC core) and allocates a fresh 64 MiB WebAssembly memory, which
 * the engine frees only at a later garbage collection.
 *
 * @param password The passphrase's UTF-8 bytes; read until the promise settles.
 * @param salt The 16 salt bytes of the envelope.
 * @returns The raw key bytes.
 */
export function deriveKeyBytesInline(
  password: Uint8Array,
  salt: Uint8Array,
): Promise<Uint8Array> {
  return argon2id({
    password,
    salt,
    ...ARGON2_PARAMETERS,
    outputType: "binary",
  });
}
