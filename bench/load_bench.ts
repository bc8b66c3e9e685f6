/**
 * Client overhead against raw `fetch`, on the same in-process server
 * listening on 127.0.0.1, so each client result reads as a ratio to the
 * baseline of the same run. A fixed iteration count keeps it to seconds.
 *
 * Run: deno bench --allow-net=127.0.0.1 --allow-read --allow-env bench/load_bench.ts
 */

import { Client } from "../mod.ts";
import { createStashServer } from "../testing.ts";

const server = createStashServer();
const listener = await server.listen();
const client = new Client(listener.url, { retries: 0 });
server.put("bench/key", "a small configuration value");
const url = `${listener.url}/kv/bench%2Fkey`;
const body = new TextEncoder().encode("a small configuration value");
const runs = { n: 2000, warmup: 200 };

// The process exits after the last bench; this releases the socket first.
globalThis.addEventListener("unload", () => {
  void client.close();
  void server.close();
});

Deno.bench({
  name: "raw fetch GET",
  group: "get",
  baseline: true,
  ...runs,
  async fn() {
    const response = await fetch(url);
    await response.arrayBuffer();
  },
});

Deno.bench({
  name: "client.get",
  group: "get",
  ...runs,
  async fn() {
    await client.get("bench/key");
  },
});

Deno.bench({
  name: "raw fetch PUT",
  group: "set",
  baseline: true,
  ...runs,
  async fn() {
    const response = await fetch(url, {
      method: "PUT",
      headers: { "x-stash-format": "text" },
      body,
    });
    await response.arrayBuffer();
  },
});

Deno.bench({
  name: "client.set",
  group: "set",
  ...runs,
  async fn() {
    await client.set("bench/key", body);
  },
});
