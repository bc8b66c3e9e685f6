/**
 * The `$ZK$` envelope of a zero-knowledge value:
 * `"$ZK$" + base64(salt[16] || nonce[12] || ciphertext || tag[16])`.
 *
 * @example Checking for an envelope
 * ```ts
 * import { isEncrypted } from "./envelope.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isEncrypted("$ZK$AAAA"), true);
 * assert.equal(isEncrypted("$ZK$"), false);
 * ```
 *
 * @module
 */

import { DecryptionError } from "../errors.ts";
import { decodeBase64, encodeBase64 } from "./base64.ts";
import { SALT_LENGTH } from "./argon2.ts";

/** The ASCII prefix that marks a zero-knowledge value. */
export const ZK_PREFIX = "$ZK$";

/** Length in bytes of the AES-GCM nonce stored in every envelope. */
export const NONCE_LENGTH = 12;

/** Length in bytes of the AES-GCM authentication tag. */
export const TAG_LENGTH = 16;

/** Decoded bytes of the smallest envelope: salt, nonce and tag around an empty plaintext. */
export const MIN_PAYLOAD_LENGTH: number = SALT_LENGTH + NONCE_LENGTH +
  TAG_LENGTH;

const PREFIX_BYTES = [0x24, 0x5a, 0x4b, 0x24];

/** The parts of a decoded envelope. */
export interface ParsedEnvelope {
  /** The 16-byte Argon2id salt. */
  salt: Uint8Array;
  /** The 12-byte AES-GCM nonce. */
  nonce: Uint8Array;
  /** The ciphertext followed by the 16-byte tag. */
  sealed: Uint8Array;
}

/**
 * Reports whether a stored value is a zero-knowledge envelope: it starts
 * with `$ZK$` and has at least one more byte. The rest is not validated, so
 * a value can be "encrypted" here and still fail to decrypt.
 *
 * @param value The value as stored, as text or bytes.
 * @returns True when the value has the `$ZK$` prefix and more.
 */
export function isEncrypted(value: string | Uint8Array): boolean {
  if (typeof value === "string") {
    return value.length > ZK_PREFIX.length && value.startsWith(ZK_PREFIX);
  }
  if (value.length <= PREFIX_BYTES.length) return false;
  return PREFIX_BYTES.every((byte, index) => value[index] === byte);
}

/**
 * Computes the envelope length in bytes for a plaintext of `plaintextLength`
 * bytes: `4 + 4 * ceil((n + 44) / 3)`.
 *
 * @param plaintextLength Plaintext length in bytes.
 * @returns Envelope length in bytes (ASCII characters).
 */
export function envelopeLength(plaintextLength: number): number {
  return ZK_PREFIX.length +
    4 * Math.ceil((plaintextLength + MIN_PAYLOAD_LENGTH) / 3);
}

/**
 * Builds the envelope text from its parts.
 *
 * @param salt The 16-byte salt.
 * @param nonce The 12-byte nonce.
 * @param sealed The AES-GCM output: ciphertext followed by the tag.
 * @returns `$ZK$` followed by canonical base64.
 */
export function formatEnvelope(
  salt: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
): string {
  const payload = new Uint8Array(salt.length + nonce.length + sealed.length);
  payload.set(salt, 0);
  payload.set(nonce, salt.length);
  payload.set(sealed, salt.length + nonce.length);
  return ZK_PREFIX + encodeBase64(payload);
}

/**
 * Splits an envelope into salt, nonce and sealed bytes. The base64 is read
 * leniently (whitespace and missing padding are accepted).
 *
 * @param value The stored value, as text or bytes.
 * @param key The key the value belongs to, for the error.
 * @returns The envelope's parts.
 * @throws {DecryptionError} The prefix is missing, the base64 is invalid,
 * or the payload is shorter than 44 bytes.
 */
export function parseEnvelope(
  value: string | Uint8Array,
  key?: string,
): ParsedEnvelope {
  const text = typeof value === "string"
    ? value
    : new TextDecoder().decode(value);
  if (!isEncrypted(text)) {
    throw decryptionError("missing $ZK$ prefix", key);
  }
  let payload: Uint8Array;
  try {
    payload = decodeBase64(text.slice(ZK_PREFIX.length));
  } catch (error) {
    throw decryptionError("invalid base64", key, error);
  }
  if (payload.length < MIN_PAYLOAD_LENGTH) {
    throw decryptionError(
      `payload of ${payload.length} bytes is shorter than ${MIN_PAYLOAD_LENGTH}`,
      key,
    );
  }
  return {
    salt: payload.subarray(0, SALT_LENGTH),
    nonce: payload.subarray(SALT_LENGTH, SALT_LENGTH + NONCE_LENGTH),
    sealed: payload.subarray(SALT_LENGTH + NONCE_LENGTH),
  };
}

/**
 * Builds the {@link DecryptionError} for a value that failed to decrypt,
 * naming the key when one is given.
 *
 * @param reason Short reason, stored as the error's `reason`.
 * @param key The key the value belongs to.
 * @param cause The underlying failure.
 * @returns The error, ready to throw.
 */
export function decryptionError(
  reason: string,
  key?: string,
  cause?: unknown,
): DecryptionError {
  const target = key === undefined
    ? "zero-knowledge value"
    : `zero-knowledge value of key ${JSON.stringify(key)}`;
  return new DecryptionError(`Failed to decrypt ${target}: ${reason}`, {
    reason,
    ...(key === undefined ? {} : { key }),
    ...(cause === undefined ? {} : { cause }),
  });
}
