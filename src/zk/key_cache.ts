/**
 * Derived AES keys kept by salt: a bounded LRU of decrypt keys with shared
 * in-flight derivations, and the write key that is reused for many values
 * and rotated after a set number of encryptions.
 *
 * @module
 */

import { encodeBase64 } from "./base64.ts";

/** A derived key and the salt it was derived with. */
export interface SaltedKey {
  /** The 16 salt bytes. */
  salt: Uint8Array;
  /** The non-extractable AES-GCM key. */
  key: CryptoKey;
}

/**
 * Least-recently-used cache of derived keys by salt. A salt that is being
 * derived is derived once, however many callers ask for it meanwhile.
 */
export class KeyCache {
  #capacity: number;
  #entries = new Map<string, CryptoKey>();
  #pending = new Map<string, Promise<CryptoKey>>();
  #generation = 0;

  /**
   * Creates a cache.
   *
   * @param capacity Maximum number of keys kept; 0 keeps none but still
   * shares in-flight derivations.
   */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Number of keys in the cache. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Returns the cached key for `salt`, marking it most recently used.
   *
   * @param salt The salt bytes.
   * @returns The key, or undefined when it is not cached.
   */
  get(salt: Uint8Array): CryptoKey | undefined {
    const id = saltId(salt);
    const key = this.#entries.get(id);
    if (key !== undefined) {
      this.#entries.delete(id);
      this.#entries.set(id, key);
    }
    return key;
  }

  /**
   * Stores a key, evicting the least recently used one when full.
   *
   * @param salt The salt the key was derived with.
   * @param key The derived key.
   */
  set(salt: Uint8Array, key: CryptoKey): void {
    this.#store(saltId(salt), key);
  }

  /**
   * Returns the cached key for `salt`, or joins or starts its derivation.
   * A key whose derivation finishes after {@link KeyCache.clear} is not
   * stored.
   *
   * @param salt The salt bytes.
   * @param derive Derives the key; called at most once per salt at a time.
   * @returns The key.
   */
  getOrDerive(
    salt: Uint8Array,
    derive: () => Promise<CryptoKey>,
  ): Promise<CryptoKey> {
    const cached = this.get(salt);
    if (cached !== undefined) return Promise.resolve(cached);
    const id = saltId(salt);
    const pending = this.#pending.get(id);
    if (pending !== undefined) return pending;
    const generation = this.#generation;
    const derivation = derive().then((key) => {
      if (generation === this.#generation) this.#store(id, key);
      return key;
    }).finally(() => {
      if (this.#pending.get(id) === derivation) this.#pending.delete(id);
    });
    this.#pending.set(id, derivation);
    return derivation;
  }

  /** Drops every key; derivations still running are not stored when they finish. */
  clear(): void {
    this.#entries.clear();
    this.#pending.clear();
    this.#generation++;
  }

  #store(id: string, key: CryptoKey): void {
    if (this.#capacity === 0) return;
    this.#entries.delete(id);
    this.#entries.set(id, key);
    while (this.#entries.size > this.#capacity) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
  }
}

function saltId(salt: Uint8Array): string {
  return encodeBase64(salt);
}

interface WriteSlot {
  salt: Uint8Array;
  key: Promise<CryptoKey>;
  uses: number;
  ready: boolean;
  failed: boolean;
}

/**
 * The key used for writes: one random salt and its derived key serve
 * `rotateAfter` encryptions, then writes move to a new salt.
 *
 * The next salt's key is derived in the background once the current salt has
 * 10% of its uses left. When writes outpace that derivation, they keep the
 * current salt until the new key is ready, up to twice `rotateAfter`, and
 * only then wait. Concurrent encryptions share one derivation. A client that
 * stops writing before rotation wastes the prefetched derivation.
 */
export class WriteKeyRotation {
  #rotateAfter: number;
  #prefetchAt: number;
  #slot: WriteSlot | undefined;
  #next: WriteSlot | undefined;

  /**
   * Creates the rotation.
   *
   * @param rotateAfter Encryptions per salt, at least 1.
   */
  constructor(rotateAfter: number) {
    this.#rotateAfter = rotateAfter;
    this.#prefetchAt = rotateAfter - Math.max(1, Math.ceil(rotateAfter / 10));
  }

  /**
   * Reserves one encryption under the current write key, moving to the next
   * salt when the current one is used up or its derivation failed.
   *
   * @param newSalt Returns a fresh random salt.
   * @param derive Derives the key for a new salt.
   * @returns The salt and its key.
   */
  async next(
    newSalt: () => Uint8Array,
    derive: (salt: Uint8Array) => Promise<CryptoKey>,
  ): Promise<SaltedKey> {
    let slot = this.#slot;
    if (slot === undefined || slot.failed || this.#shouldRotate(slot)) {
      const prefetched = this.#next?.failed === false ? this.#next : undefined;
      slot = prefetched ?? createSlot(newSalt(), derive);
      this.#next = undefined;
      this.#slot = slot;
    }
    slot.uses++;
    if (slot.uses > this.#prefetchAt && this.#next === undefined) {
      this.#next = createSlot(newSalt(), derive);
    }
    const current = slot;
    try {
      return { salt: current.salt, key: await current.key };
    } catch (error) {
      if (this.#slot === current) this.#slot = undefined;
      throw error;
    }
  }

  /** Forgets the current and the prefetched write key. */
  clear(): void {
    this.#slot = undefined;
    this.#next = undefined;
  }

  #shouldRotate(slot: WriteSlot): boolean {
    if (slot.uses < this.#rotateAfter) return false;
    const next = this.#next;
    const nextPending = next !== undefined && !next.ready && !next.failed;
    return !nextPending || slot.uses >= 2 * this.#rotateAfter;
  }
}

function createSlot(
  salt: Uint8Array,
  derive: (salt: Uint8Array) => Promise<CryptoKey>,
): WriteSlot {
  const slot: WriteSlot = {
    salt,
    key: derive(salt),
    uses: 0,
    ready: false,
    failed: false,
  };
  // A prefetched derivation may fail before any write awaits it. Rotation
  // then derives a new key, and a write that already took the slot gets the
  // rejection.
  slot.key.then(
    () => {
      slot.ready = true;
    },
    () => {
      slot.failed = true;
    },
  );
  return slot;
}
