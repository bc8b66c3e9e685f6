/**
 * {@link ZkOptions}: the settings of zero-knowledge encryption, and their
 * defaults and validation.
 *
 * @module
 */

/** Settings of zero-knowledge encryption. */
export interface ZkOptions {
  /**
   * Maximum number of derived decrypt keys kept, by salt, in a
   * least-recently-used cache. Each entry is a non-extractable `CryptoKey`,
   * so a value whose salt was seen before decrypts without an Argon2id run.
   * 0 disables the cache.
   *
   * @default {64}
   */
  cacheSize?: number;
  /**
   * Number of values that one write salt (one derived key) encrypts before
   * the next write derives a key for a fresh random salt.
   *
   * Trade-off: values written by one client share a salt until rotation, so
   * anyone with access to the stored values, the server included, can tell
   * that they came from the same writer and passphrase. The key stays safe:
   * every value gets a fresh random 96-bit nonce, and the probability that
   * two of n values under one key share a nonce is about n² / 2^97, which is
   * 6 × 10^-24 at n = 1,000 and 2^-33 at NIST SP 800-38D's limit of 2^32
   * random-nonce encryptions per key. The rotation therefore bounds
   * linkability and the number of values exposed by one derived key, and
   * spreads one 64 MiB Argon2id run over many writes. Values up to 2^32.
   *
   * The next key is derived in the background before the count runs out.
   * Writes that outpace that derivation keep the current salt until the new
   * key is ready, up to twice this count, so a salt encrypts at most
   * `2 * rotateAfter` values.
   *
   * @default {1000}
   */
  rotateAfter?: number;
  /**
   * Derive a fresh salt and key for every written value, as the other Stash
   * clients do: no two values are linkable by salt, but every write costs a
   * full Argon2id run (64 MiB, about 150 ms of CPU). `rotateAfter` is then
   * ignored.
   *
   * @default {false}
   */
  saltPerValue?: boolean;
  /**
   * Maximum number of Argon2id derivations running at once in this codec.
   * Each uses 64 MiB of memory, and other derivations wait in arrival order.
   * In workers, which end after each derivation, this bounds memory as well
   * as CPU. On the calling thread derivations run one at a time anyway, and
   * the engine frees each 64 MiB lazily, so memory can grow well past it
   * (about 700–900 MB for 50 cold reads, measured on Deno 2.9).
   *
   * @default {2}
   */
  maxConcurrentDerivations?: number;
  /**
   * Derivation thread mode. `"auto"`: in a short-lived Web Worker per
   * derivation when the runtime has `Worker` and one starts, else on the
   * calling thread, silently. `true`: in workers only, and a derivation that
   * cannot get a worker rejects. `false`: on the calling thread, which blocks
   * its event loop for each derivation.
   *
   * @default {"auto"}
   */
  worker?: "auto" | boolean;
}

/** {@link ZkOptions} with every default filled in. */
export type ResolvedZkOptions = Required<ZkOptions>;

/** Maximum `rotateAfter`: NIST SP 800-38D's 2^32 random-nonce encryptions per key. */
export const MAX_ROTATE_AFTER = 2 ** 32;

/**
 * Validates options and fills in defaults.
 *
 * @param options The options as passed.
 * @returns The options with defaults.
 * @throws {TypeError} An option has the wrong type.
 * @throws {RangeError} A numeric option is out of range.
 */
export function resolveZkOptions(options: ZkOptions): ResolvedZkOptions {
  const worker = options.worker ?? "auto";
  if (worker !== "auto" && typeof worker !== "boolean") {
    throw new TypeError(
      `ZK option worker must be "auto", true or false, got ${
        JSON.stringify(worker)
      }`,
    );
  }
  const saltPerValue = options.saltPerValue ?? false;
  if (typeof saltPerValue !== "boolean") {
    throw new TypeError(
      `ZK option saltPerValue must be a boolean, got ${typeof saltPerValue}`,
    );
  }
  return {
    cacheSize: checkInteger("cacheSize", options.cacheSize ?? 64, 0),
    rotateAfter: checkInteger(
      "rotateAfter",
      options.rotateAfter ?? 1000,
      1,
      MAX_ROTATE_AFTER,
    ),
    saltPerValue,
    maxConcurrentDerivations: checkInteger(
      "maxConcurrentDerivations",
      options.maxConcurrentDerivations ?? 2,
      1,
    ),
    worker,
  };
}

function checkInteger(
  name: string,
  value: unknown,
  min: number,
  max: number = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `ZK option ${name} must be a number, got ${typeof value}`,
    );
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `ZK option ${name} must be an integer from ${min} to ${max}, got ${value}`,
    );
  }
  return value;
}
