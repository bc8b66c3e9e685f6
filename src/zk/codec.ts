/**
 * {@link ZkCodec}: zero-knowledge encryption of values with cached,
 * bounded and off-thread key derivation. The client creates one codec per
 * passphrase and calls it for every value it writes or reads.
 *
 * @example Encrypt and decrypt
 * ```ts
 * import { ZkCodec } from "./codec.ts";
 * import assert from "node:assert/strict";
 *
 * const codec = new ZkCodec("correct horse battery staple", { worker: false });
 * const envelope = await codec.encrypt(new TextEncoder().encode("secret"));
 * const plaintext = await codec.decrypt(envelope);
 * assert.equal(new TextDecoder().decode(plaintext), "secret");
 * codec.close();
 * ```
 *
 * @module
 */

import { ClosedError } from "../errors.ts";
import { importAesKey, openEnvelope, sealEnvelope } from "./aes_gcm.ts";
import { SALT_LENGTH } from "./argon2.ts";
import { parseEnvelope } from "./envelope.ts";
import { type DeriveKeyBytes, KeyDeriver, type WorkerMode } from "./kdf.ts";
import { KeyCache, type SaltedKey, WriteKeyRotation } from "./key_cache.ts";
import { encodePassphrase } from "./passphrase.ts";
import { resolveZkOptions } from "./options.ts";
import type { ZkOptions } from "./options.ts";

export type { ZkOptions } from "./options.ts";
export type { DeriveKeyBytes } from "./kdf.ts";

/** Options of {@link ZkCodec}: the public {@link ZkOptions} plus test hooks. */
export interface ZkCodecOptions extends ZkOptions {
  /**
   * Replaces the Argon2id computation, for tests that count or delay
   * derivations. The function gets a copy of the passphrase bytes, which is
   * zeroed when its promise settles.
   *
   * @default undefined (Argon2id through hash-wasm)
   */
  deriveKeyBytes?: DeriveKeyBytes;
}

/** Options of {@link ZkCodec.decrypt}. */
export interface ZkDecryptOptions {
  /** The Stash key of the value, put into the error's message and `key` field. */
  key?: string;
}

const REDACTED = "[redacted]";

/**
 * Encrypts and decrypts `$ZK$` values for one passphrase.
 *
 * Derived keys are cached by salt as non-extractable `CryptoKey`s, so reading
 * a value whose salt was seen before costs no Argon2id run. Writes reuse one
 * salt for up to `rotateAfter` values (see {@link ZkOptions.rotateAfter} for
 * the trade-off) unless `saltPerValue` is set. After {@link ZkCodec.close},
 * every call rejects with {@link ClosedError}.
 */
export class ZkCodec {
  #password: Uint8Array;
  #closed = false;
  #cache: KeyCache;
  #writeKey: WriteKeyRotation | undefined;
  #deriver: KeyDeriver;

  /**
   * Creates a codec. The passphrase string is not kept: only a copy of its
   * UTF-8 bytes, which {@link ZkCodec.close} zeroes.
   *
   * @param passphrase At least 16 UTF-8 bytes.
   * @param options Cache, rotation, concurrency and worker settings.
   * @throws {TypeError} The passphrase is not a string or is shorter than 16
   * UTF-8 bytes, or an option has the wrong type.
   * @throws {RangeError} A numeric option is out of range.
   */
  constructor(passphrase: string, options: ZkCodecOptions = {}) {
    const resolved = resolveZkOptions(options);
    this.#password = encodePassphrase(passphrase);
    this.#cache = new KeyCache(resolved.cacheSize);
    this.#writeKey = resolved.saltPerValue
      ? undefined
      : new WriteKeyRotation(resolved.rotateAfter);
    this.#deriver = new KeyDeriver({
      maxConcurrent: resolved.maxConcurrentDerivations,
      worker: resolved.worker satisfies WorkerMode,
      ...(options.deriveKeyBytes === undefined
        ? {}
        : { deriveKeyBytes: options.deriveKeyBytes }),
    });
  }

  /** Whether {@link ZkCodec.close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Encrypts a plaintext into a `$ZK$` envelope. A plaintext that already
   * starts with `$ZK$` is encrypted like any other.
   *
   * @param plaintext The bytes to encrypt.
   * @returns The envelope's ASCII bytes.
   * @throws {ClosedError} The codec is closed, before or during the call.
   */
  async encrypt(plaintext: Uint8Array): Promise<Uint8Array> {
    this.#assertOpen();
    if (!(plaintext instanceof Uint8Array)) {
      throw new TypeError("Plaintext to encrypt must be a Uint8Array");
    }
    const { salt, key } = await this.#nextWriteKey();
    this.#assertOpen();
    const envelope = await sealEnvelope(key, salt, plaintext);
    this.#assertOpen();
    return new TextEncoder().encode(envelope);
  }

  /**
   * Decrypts a `$ZK$` envelope. The base64 is read leniently: whitespace
   * and missing padding are accepted.
   *
   * @param envelope The stored value, as bytes or text.
   * @param options The value's key, for error messages.
   * @returns The plaintext.
   * @throws {DecryptionError} Wrong passphrase, tampered, truncated or
   * malformed value, or a value without the `$ZK$` prefix.
   * @throws {ClosedError} The codec is closed, before or during the call.
   */
  async decrypt(
    envelope: Uint8Array | string,
    options: ZkDecryptOptions = {},
  ): Promise<Uint8Array> {
    this.#assertOpen(options.key);
    const parsed = parseEnvelope(envelope, options.key);
    const key = await this.#deriveCached(parsed.salt);
    this.#assertOpen(options.key);
    return await openEnvelope(key, parsed, options.key);
  }

  /**
   * Zeroes the passphrase bytes, drops every cached key, terminates running
   * workers and makes every later or pending call reject with
   * {@link ClosedError}. Calling it again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#deriver.close(closedError());
    this.#password.fill(0);
    this.#cache.clear();
    this.#writeKey?.clear();
  }

  /** Returns a description without the passphrase. */
  toString(): string {
    return `ZkCodec { passphrase: ${REDACTED}, closed: ${this.#closed} }`;
  }

  /** Returns a JSON form without the passphrase. */
  toJSON(): { passphrase: string; closed: boolean } {
    return { passphrase: REDACTED, closed: this.#closed };
  }

  /** Returns the redacted description for `Deno.inspect` and `console.log`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /** Returns the redacted description for Node's `util.inspect`. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  #nextWriteKey(): Promise<SaltedKey> {
    if (this.#writeKey === undefined) {
      const salt = randomSalt();
      return this.#deriveCached(salt).then((key) => ({ salt, key }));
    }
    return this.#writeKey.next(randomSalt, (salt) => this.#deriveCached(salt))
      .then((written) => {
        // Keep the write key recently used, so reading back own writes stays free.
        if (!this.#closed) this.#cache.set(written.salt, written.key);
        return written;
      });
  }

  #deriveCached(salt: Uint8Array): Promise<CryptoKey> {
    return this.#cache.getOrDerive(salt, async () => {
      const raw = await this.#deriver.derive(this.#password, salt);
      try {
        this.#assertOpen();
        return await importAesKey(raw);
      } finally {
        raw.fill(0);
      }
    });
  }

  #assertOpen(key?: string): void {
    if (this.#closed) throw closedError(key);
  }
}

function closedError(key?: string): ClosedError {
  return new ClosedError(
    "Zero-knowledge codec is closed: its passphrase and keys were wiped; " +
      "create a new client to encrypt or decrypt",
    key === undefined ? {} : { key },
  );
}

function randomSalt(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(SALT_LENGTH));
}
