/**
 * An in-process Stash server for tests. It imitates the newest Stash server
 * (key normalisation, token ACLs with the secrets rule, list quirks, history,
 * rate and size limits, SSE with deferred headers) and, with
 * `version: "v0.13.0"`, the v0.13.0 server. It imports nothing from the
 * client, so tests of the client run against an independent implementation.
 *
 * Use {@linkcode StashServer.fetch} as the client's `fetch` (no sockets; this
 * also works on Node), or {@linkcode StashServer.listen} for a real HTTP
 * server on 127.0.0.1 (Deno only). {@linkcode StashServer.faults} injects
 * failures, and {@linkcode StashServer.requests} records what the client sent.
 *
 * @example Inject a fault and inspect the request
 * ```ts
 * import { createStashServer } from "@stash/client/testing";
 * import assert from "node:assert/strict";
 *
 * const server = createStashServer();
 * server.faults.add({
 *   method: "GET",
 *   path: "/kv/app%2Fconfig",
 *   action: { type: "respond", status: 503 },
 * });
 * const response = await server.fetch("http://stash.test/kv/app%2Fconfig");
 * assert.equal(response.status, 503);
 * assert.equal(server.requests[0]?.url, "/kv/app%2Fconfig");
 * await server.close();
 * ```
 *
 * @module
 */

export {
  createStashServer,
  type RecordedRequest,
  type StashListener,
  StashServer,
  type StashServerOptions,
} from "./src/testing/server.ts";
export type { Access, TokenConfig } from "./src/testing/acl.ts";
export type { RateLimitOptions } from "./src/testing/rate_limit.ts";
export type {
  ChangeAction,
  ChangeEvent,
  SubscriptionTarget,
} from "./src/testing/sse_hub.ts";
export {
  type DelayFault,
  type DripFault,
  type ErrorBodyFault,
  type FaultAction,
  type FaultRule,
  Faults,
  type HandlerFault,
  type RejectFault,
  type RespondFault,
  type StallFault,
  type StreamFault,
} from "./src/testing/faults.ts";
