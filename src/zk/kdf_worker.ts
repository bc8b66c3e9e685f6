/**
 * Worker script that runs one Argon2id derivation per message, so the
 * 64 MiB computation stays off the caller's event loop.
 *
 * A request is `{ id, password, salt }` with the password bytes transferred
 * to the worker; the worker zeroes them once the derivation settles. The
 * response is `{ id, key }` with the 32 key bytes transferred back, or
 * `{ id, error }` with the error message.
 *
 * @module
 */

import { deriveKeyBytesInline } from "./argon2.ts";

/** A derivation request sent to the worker. */
export interface KdfRequest {
  /** Id that the response repeats. */
  id: number;
  /** The passphrase's UTF-8 bytes; the worker zeroes them after use. */
  password: Uint8Array;
  /** The 16 salt bytes. */
  salt: Uint8Array;
}

/** A derivation response sent back by the worker. */
export type KdfResponse =
  | { id: number; key: Uint8Array }
  | { id: number; error: string };

interface WorkerScope {
  onmessage: ((event: MessageEvent<KdfRequest>) => void) | null;
  postMessage(message: KdfResponse, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;

async function handleRequest(request: KdfRequest): Promise<void> {
  try {
    const derived = await deriveKeyBytesInline(request.password, request.salt);
    const key = derived.slice();
    derived.fill(0);
    scope.postMessage({ id: request.id, key }, [key.buffer]);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    scope.postMessage({ id: request.id, error: message });
  } finally {
    request.password.fill(0);
  }
}

scope.onmessage = (event) => {
  void handleRequest(event.data);
};
