/**
 * A client for Stash, the HTTP key-value configuration service: typed
 * errors, retries with backoff, zero-knowledge encryption compatible with
 * the other Stash clients, and change subscriptions.
 *
 * @example Read and write values
 * ```ts
 * import { Client, NotFoundError } from "@stash/client";
 * import { createStashServer } from "@stash/client/testing";
 * import assert from "node:assert/strict";
 *
 * const server = createStashServer();
 * await using client = new Client("http://stash.test", { fetch: server.fetch });
 *
 * await client.setJson("app/config", { debug: true });
 * assert.deepEqual(await client.getJson("app/config"), { debug: true });
 * assert.equal(await client.getOrDefault("app/missing", "none"), "none");
 * await assert.rejects(client.get("app/missing"), NotFoundError);
 * ```
 *
 * @module
 */

export { Client } from "./src/client.ts";
export type {
  CallOptions,
  ClientOptions,
  ListFilter,
  ListOptions,
  SetOptions,
  SetResult,
  WatchKeyOptions,
} from "./src/options.ts";
export { Format, isFormat } from "./src/format.ts";
export type { HistoryEntry, KeyInfo } from "./src/key_info.ts";
export { normalizeKey } from "./src/keys.ts";
export type { KeyEncoding } from "./src/keys.ts";
export type { FetchFunction, RetryEvent } from "./src/transport.ts";
export type { SleepFunction } from "./src/retry.ts";
export { decrypt, encrypt, isEncrypted } from "./src/zk/cipher.ts";
export { ZkCodec } from "./src/zk/codec.ts";
export type {
  DeriveKeyBytes,
  ZkCodecOptions,
  ZkDecryptOptions,
} from "./src/zk/codec.ts";
export type { ZkOptions } from "./src/zk/options.ts";
export {
  Subscription,
  SubscriptionOverflowError,
} from "./src/sse/subscription.ts";
export type {
  ChangeAction,
  ChangeEvent,
  OverflowInfo,
  OverflowPolicy,
  ReconnectOptions,
  StateChangeInfo,
  SubscribeOptions,
  SubscriptionHooks,
  SubscriptionOverflowErrorOptions,
  SubscriptionState,
  SubscriptionTarget,
} from "./src/sse/subscription.ts";
export { EventStreamError } from "./src/sse/parser.ts";
export type {
  EventStreamErrorOptions,
  ServerSentEvent,
} from "./src/sse/parser.ts";
export { Watch } from "./src/sse/watch.ts";
export type { WatchOptions, WatchUpdate } from "./src/sse/watch.ts";
export {
  ClosedError,
  ConnectionError,
  DecryptionError,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitError,
  ResponseError,
  StashError,
  TimeoutError,
  UnauthorizedError,
  UnsupportedError,
} from "./src/errors.ts";
export type {
  DecryptionErrorOptions,
  PayloadTooLargeErrorOptions,
  RateLimitErrorOptions,
  RequestContext,
  ResponseErrorOptions,
  StashErrorOptions,
  TimeoutErrorOptions,
} from "./src/errors.ts";
