/**
 * AES-256-GCM sealing and opening of envelopes through WebCrypto, with
 * non-extractable keys.
 *
 * @module
 */

import { decryptionError, formatEnvelope, NONCE_LENGTH } from "./envelope.ts";
import type { ParsedEnvelope } from "./envelope.ts";

/**
 * Imports 32 raw key bytes as a non-extractable AES-GCM key.
 *
 * @param raw The key bytes; the caller may zero them once this resolves.
 * @returns The key, usable for encrypt and decrypt only.
 */
export function importAesKey(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    toArrayBufferView(raw),
    { name: "AES-GCM" },
    false,
    ["encrypt", "decrypt"],
  );
}

/**
 * Encrypts a plaintext under a derived key with a fresh random nonce.
 *
 * @param key The AES-GCM key derived from the passphrase and `salt`.
 * @param salt The salt the key was derived with; it goes into the envelope.
 * @param plaintext The bytes to encrypt.
 * @returns The envelope text.
 */
export async function sealEnvelope(
  key: CryptoKey,
  salt: Uint8Array,
  plaintext: Uint8Array,
): Promise<string> {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce },
    key,
    toArrayBufferView(plaintext),
  );
  return formatEnvelope(salt, nonce, new Uint8Array(sealed));
}

/**
 * Decrypts and authenticates a parsed envelope.
 *
 * @param key The AES-GCM key derived from the passphrase and the envelope's salt.
 * @param envelope The parsed envelope.
 * @param valueKey The Stash key of the value, for the error.
 * @returns The plaintext.
 * @throws {DecryptionError} The tag does not match: wrong passphrase or a
 * tampered value.
 */
export async function openEnvelope(
  key: CryptoKey,
  envelope: ParsedEnvelope,
  valueKey?: string,
): Promise<Uint8Array> {
  try {
    const plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: toArrayBufferView(envelope.nonce) },
      key,
      toArrayBufferView(envelope.sealed),
    );
    return new Uint8Array(plaintext);
  } catch (error) {
    throw decryptionError(
      "authentication failed (wrong passphrase or tampered value)",
      valueKey,
      error,
    );
  }
}

/** Returns the bytes as a view over an ArrayBuffer, copying only views of a SharedArrayBuffer. */
function toArrayBufferView(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  if (bytes.buffer instanceof ArrayBuffer) {
    return bytes as Uint8Array<ArrayBuffer>;
  }
  return new Uint8Array(bytes);
}
