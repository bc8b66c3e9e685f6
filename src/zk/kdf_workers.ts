/**
 * Argon2id derivation in Web Workers, one short-lived worker per derivation.
 *
 * hash-wasm allocates a fresh 64 MiB WebAssembly memory on every call, and a
 * long-lived isolate frees old ones only at a later garbage collection. A
 * worker that is terminated right after its derivation returns that memory
 * at once, so peak memory follows the number of derivations running, not
 * the number finished. Spawning costs about 35 ms plus a WebAssembly compile
 * per derivation (Deno 2.9, 2-core AMD EPYC); bench/README.md has the numbers
 * behind this choice.
 *
 * @module
 */

import type { KdfRequest, KdfResponse } from "./kdf_worker.ts";

/** A function that derives the 32 key bytes for a password and salt. */
export type DeriveKeyBytes = (
  password: Uint8Array,
  salt: Uint8Array,
) => Promise<Uint8Array>;

/** Reports whether the runtime has Web Workers. */
export function hasWorkers(): boolean {
  return typeof Worker !== "undefined";
}

/**
 * Returns the URL of the worker script beside this module, with this
 * module's own extension, so that it still resolves after a build renames
 * `.ts` files to `.js`.
 */
export function kdfWorkerUrl(): URL {
  const path = new URL(import.meta.url).pathname;
  const extension = /\.[cm]?[jt]s$/.exec(path)?.[0] ?? ".js";
  return new URL(`./kdf_worker${extension}`, import.meta.url);
}

interface DenoPermissionsNamespace {
  permissions?: {
    querySync?: (descriptor: { name: "read"; path: URL }) => {
      state: string;
    };
  };
}

/**
 * Checks Deno's read permission for a local worker script before spawning.
 * Deno prints an uncaught error to stderr when a worker fails to load its
 * module, even when the parent handles the error event, so asking first
 * keeps the fallback to the calling thread silent. Other runtimes, and
 * remote scripts, are assumed loadable.
 */
function canLoadWorkerScript(url: URL): boolean {
  if (url.protocol !== "file:") return true;
  const permissions = (globalThis as { Deno?: DenoPermissionsNamespace }).Deno
    ?.permissions;
  const querySync = permissions?.querySync;
  if (querySync === undefined) return true;
  try {
    return querySync.call(permissions, { name: "read", path: url }).state ===
      "granted";
  } catch {
    return true;
  }
}

/** Raised when a worker could not be started or failed before returning a key. */
export class WorkerStartError extends Error {
  /** Creates the error; pass the worker's error event or exception as `cause`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WorkerStartError";
  }
}

interface RunningJob {
  worker: Worker;
  reject: (reason: unknown) => void;
}

/**
 * Runs each derivation in a new module worker and terminates the worker as
 * soon as it posts its result, so no worker outlives its derivation.
 */
export class WorkerKeyDeriver {
  #url: URL;
  #running = new Set<RunningJob>();
  #nextId = 0;

  /**
   * Creates a deriver for the worker script at `url`.
   *
   * @param url The worker module; defaults to {@link kdfWorkerUrl}.
   */
  constructor(url: URL = kdfWorkerUrl()) {
    this.#url = url;
  }

  /**
   * Derives the key bytes in a new worker. A copy of `password` is
   * transferred to the worker, which zeroes it after use.
   *
   * @param password The passphrase's UTF-8 bytes; not modified.
   * @param salt The 16 salt bytes.
   * @returns The 32 key bytes.
   * @throws {WorkerStartError} The worker could not start or failed.
   */
  derive(password: Uint8Array, salt: Uint8Array): Promise<Uint8Array> {
    if (!canLoadWorkerScript(this.#url)) {
      return Promise.reject(
        new WorkerStartError(
          `No read permission for the key derivation worker ${this.#url.href}`,
        ),
      );
    }
    let worker: Worker;
    try {
      worker = new Worker(this.#url, { type: "module" });
    } catch (error) {
      return Promise.reject(
        new WorkerStartError("Failed to start the key derivation worker", {
          cause: error,
        }),
      );
    }
    return new Promise((resolve, reject) => {
      const job: RunningJob = { worker, reject };
      this.#running.add(job);
      const finish = (): void => {
        worker.terminate();
        this.#running.delete(job);
      };
      worker.onmessage = (event: MessageEvent<KdfResponse>) => {
        finish();
        const response = event.data;
        if ("key" in response) resolve(response.key);
        else reject(new Error(`Key derivation failed: ${response.error}`));
      };
      worker.onerror = (event: ErrorEvent) => {
        // Without preventDefault, Deno rethrows the worker's error here.
        event.preventDefault();
        finish();
        reject(
          new WorkerStartError(
            `Key derivation worker failed: ${event.message}`,
            { cause: event.error },
          ),
        );
      };
      const passwordCopy = new Uint8Array(password);
      const request: KdfRequest = {
        id: this.#nextId++,
        password: passwordCopy,
        salt: salt.slice(),
      };
      worker.postMessage(request, [passwordCopy.buffer]);
    });
  }

  /**
   * Terminates every running worker and rejects its derivation with `reason`.
   *
   * @param reason The rejection for the derivations still running.
   */
  close(reason: unknown): void {
    for (const job of this.#running) {
      job.worker.terminate();
      job.reject(reason);
    }
    this.#running.clear();
  }
}
