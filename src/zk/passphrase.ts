/**
 * Validation of zero-knowledge passphrases.
 *
 * @module
 */

/** Minimum passphrase length in UTF-8 bytes, as every Stash client but Python counts it. */
export const MIN_PASSPHRASE_BYTES = 16;

/**
 * Validates a passphrase and returns its UTF-8 bytes, with no Unicode
 * normalisation. No message ever contains the passphrase.
 *
 * @param passphrase The value passed as the passphrase.
 * @returns A new array with the passphrase's UTF-8 bytes.
 * @throws {TypeError} The value is not a string, contains a lone surrogate,
 * or is shorter than 16 UTF-8 bytes.
 */
export function encodePassphrase(passphrase: unknown): Uint8Array {
  if (typeof passphrase !== "string") {
    const type = passphrase === null ? "null" : typeof passphrase;
    throw new TypeError(
      `Zero-knowledge passphrase must be a string, got ${type}`,
    );
  }
  if (!isWellFormed(passphrase)) {
    throw new TypeError(
      "Zero-knowledge passphrase contains a lone surrogate and has no UTF-8 " +
        "encoding; pass a well-formed string",
    );
  }
  const bytes = new TextEncoder().encode(passphrase);
  if (bytes.length < MIN_PASSPHRASE_BYTES) {
    throw new TypeError(
      `Zero-knowledge passphrase must be at least ${MIN_PASSPHRASE_BYTES} ` +
        `UTF-8 bytes (bytes, not characters), got ${bytes.length} bytes`,
    );
  }
  return bytes;
}

function isWellFormed(text: string): boolean {
  const native = (text as { isWellFormed?: () => boolean }).isWellFormed;
  if (native !== undefined) return native.call(text);
  return !/\p{Surrogate}/u.test(text);
}
