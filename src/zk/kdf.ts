/**
 * Key derivation for zero-knowledge values: Argon2id in a Web Worker where
 * the runtime has one, on the calling thread otherwise, with a bound on how
 * many derivations run at once.
 *
 * @module
 */

import { StashError } from "../errors.ts";
import { deriveKeyBytesInline } from "./argon2.ts";
import {
  type DeriveKeyBytes,
  hasWorkers,
  WorkerKeyDeriver,
  WorkerStartError,
} from "./kdf_workers.ts";
import { Semaphore } from "./semaphore.ts";

export type { DeriveKeyBytes } from "./kdf_workers.ts";

/**
 * Derivation thread mode: `"auto"` uses workers when they start, `true`
 * requires them, `false` never uses them.
 */
export type WorkerMode = "auto" | boolean;

/** Options of {@link KeyDeriver}. */
export interface KeyDeriverOptions {
  /** Maximum number of derivations running at once, at least 1. */
  maxConcurrent: number;
  /** Derivation thread mode. */
  worker: WorkerMode;
  /** Replaces the Argon2id computation; used by tests to count or delay derivations. */
  deriveKeyBytes?: DeriveKeyBytes;
}

/**
 * Runs Argon2id derivations with bounded concurrency. With `worker: "auto"`,
 * the first worker that fails to start switches this deriver to the calling
 * thread for good, silently.
 */
export class KeyDeriver {
  #semaphore: Semaphore;
  #mode: WorkerMode;
  #workers: WorkerKeyDeriver | undefined;
  #override: DeriveKeyBytes | undefined;
  #closeReason: { reason: unknown } | undefined;

  /**
   * Creates a deriver.
   *
   * @param options Concurrency bound and worker mode.
   */
  constructor(options: KeyDeriverOptions) {
    this.#semaphore = new Semaphore(options.maxConcurrent);
    this.#mode = options.worker;
    this.#override = options.deriveKeyBytes;
    const useWorkers = options.worker === true ||
      (options.worker === "auto" && hasWorkers());
    if (useWorkers && this.#override === undefined) {
      this.#workers = new WorkerKeyDeriver();
    }
  }

  /**
   * Derives the 32 key bytes once a concurrency slot is free. The
   * computation reads a copy of `password` and zeroes the copy afterwards.
   *
   * @param password The passphrase's UTF-8 bytes; not modified.
   * @param salt The 16 salt bytes.
   * @returns The key bytes; the caller should zero them after importing.
   * @throws {StashError} `worker: true` and no worker could run the derivation.
   */
  derive(password: Uint8Array, salt: Uint8Array): Promise<Uint8Array> {
    return this.#semaphore.run(() => this.#deriveNow(password, salt));
  }

  /**
   * Rejects waiting derivations with `reason`, and terminates running
   * workers and rejects their derivations too. Derivations on the calling
   * thread cannot be stopped: they finish and their result is returned.
   *
   * @param reason The rejection for derivations not yet finished.
   */
  close(reason: unknown): void {
    this.#closeReason = { reason };
    this.#workers?.close(reason);
  }

  #throwIfClosed(): void {
    if (this.#closeReason !== undefined) throw this.#closeReason.reason;
  }

  async #deriveNow(
    password: Uint8Array,
    salt: Uint8Array,
  ): Promise<Uint8Array> {
    this.#throwIfClosed();
    if (this.#workers !== undefined) {
      try {
        return await this.#workers.derive(password, salt);
      } catch (error) {
        if (!(error instanceof WorkerStartError)) throw error;
        if (this.#mode === true) throw workerRequiredError(error);
        this.#workers = undefined;
      }
    }
    if (this.#mode === true && this.#override === undefined) {
      throw workerRequiredError();
    }
    // Each derivation blocks the calling thread for its whole run, so let
    // timers and I/O run before it rather than only after a whole queue.
    await yieldToEventLoop();
    this.#throwIfClosed();
    const copy = password.slice();
    try {
      return await (this.#override ?? deriveKeyBytesInline)(copy, salt);
    } finally {
      copy.fill(0);
    }
  }
}

function workerRequiredError(cause?: unknown): StashError {
  const reason = cause instanceof Error ? ` (${cause.message})` : "";
  return new StashError(
    "Key derivation requires a Web Worker (zk option worker: true), but " +
      `none could run${reason}. On Deno the worker needs --allow-read for ` +
      'the module\'s files; or use worker: "auto" to fall back to the ' +
      "calling thread",
    cause === undefined ? {} : { cause },
  );
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
