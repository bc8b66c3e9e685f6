/**
 * Load: 1,000 concurrent mixed operations against the in-process server on
 * a 127.0.0.1 listener, with bounded memory and no leaked connections.
 */

import assert from "node:assert/strict";
import { Client } from "../mod.ts";
import { createStashServer } from "../testing.ts";

const OPERATIONS = 1000;
const KEYS = 200;
/**
 * Generous bound on RSS growth over both waves, in bytes. Client and server
 * share the process, so it counts both.
 */
const MAX_RSS_GROWTH = 512 * 1024 * 1024;

const unhandled: unknown[] = [];
globalThis.addEventListener("unhandledrejection", (event) => {
  unhandled.push(event.reason);
  event.preventDefault();
});

function operation(client: Client, i: number): Promise<unknown> {
  const key = `load/key-${i % KEYS}`;
  switch (i % 5) {
    case 0:
      return client.getOrDefault(key, "");
    case 1:
      return client.set(key, `value-${i}`);
    case 2:
      // Each delete removes a key that the same operation wrote first, outside
      // the preloaded keys, so no concurrent get can race it into a 404.
      return client.set(`load/tmp-${i}`, "x").then(() =>
        client.delete(`load/tmp-${i}`)
      );
    case 3:
      return client.list("load/key-1");
    default:
      return client.has(key);
  }
}

Deno.test("1,000 concurrent mixed operations", async () => {
  // The concurrency limit equals the wave size and retries are off, so a
  // slot the server failed to release would turn into a 503 in wave two.
  const server = createStashServer({ maxConcurrent: OPERATIONS });
  const listener = await server.listen();
  const client = new Client(listener.url, { retries: 0, timeout: 10_000 });
  for (let i = 0; i < KEYS; i++) server.put(`load/key-${i}`, "initial");

  const rssBefore = Deno.memoryUsage().rss;
  const timings: number[] = [];
  for (let wave = 0; wave < 2; wave++) {
    server.clearRequests();
    const started = performance.now();
    const results = await Promise.allSettled(
      Array.from({ length: OPERATIONS }, (_, i) => operation(client, i)),
    );
    timings.push(performance.now() - started);
    const failures = results.filter((r) => r.status === "rejected");
    assert.deepEqual(
      failures.slice(0, 3).map((r) =>
        String((r as PromiseRejectedResult).reason)
      ),
      [],
    );
    // Case 2 sends two requests; every other case sends one.
    assert.equal(server.requests.length, OPERATIONS + OPERATIONS / 5);
  }
  const rssAfter = Deno.memoryUsage().rss;
  const growth = rssAfter - rssBefore;

  assert.equal(
    server.keys().filter((k) => k.startsWith("load/tmp-")).length,
    0,
  );
  assert.equal(server.subscriberCount, 0);
  assert.ok(growth < MAX_RSS_GROWTH, `RSS grew by ${growth} bytes`);
  // The measured numbers go into docs/RELIABILITY.md.
  // deno-lint-ignore no-console
  console.log(
    `${OPERATIONS} concurrent operations: ` +
      timings.map((ms) => `${ms.toFixed(0)} ms`).join(", ") +
      `; RSS ${(rssBefore / 1e6).toFixed(0)} MB -> ` +
      `${(rssAfter / 1e6).toFixed(0)} MB`,
  );

  await client.close();
  await server.close();
  assert.deepEqual(unhandled, []);
});
