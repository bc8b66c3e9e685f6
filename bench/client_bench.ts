/**
 * The client against the in-process server, through an injected fetch and
 * over a loopback socket. Plain get and set are the baselines. Against them
 * the same run measures zero-knowledge reads, cold and with a cached key,
 * and writes, with one salt per value and with salt reuse. Run with
 * `deno bench --allow-net=127.0.0.1 --allow-read --allow-env bench/client_bench.ts`.
 * The results are in bench/README.md.
 *
 * @module
 */

import { Client } from "../mod.ts";
import { createStashServer } from "../testing.ts";

const PASSPHRASE = "bench passphrase 0123456789";
const VALUE = "x".repeat(1024);
const COLD_RUNS = { n: 10, warmup: 1 };

const server = createStashServer();
const fetch = server.fetch;
const plain = new Client("http://stash.test", { fetch });
const reuse = new Client("http://stash.test", { fetch, zkKey: PASSPHRASE });
const perValue = new Client("http://stash.test", {
  fetch,
  zkKey: PASSPHRASE,
  zk: { saltPerValue: true },
});

await plain.set("bench/plain", VALUE);
await reuse.set("bench/zk", VALUE);
// A cached read: the writer's own key is in its cache.
await reuse.get("bench/zk");

// Values with distinct salts for cold reads, one per measured run.
const coldKeys: string[] = [];
for (let index = 0; index < COLD_RUNS.n + COLD_RUNS.warmup; index++) {
  const key = `bench/cold/${index}`;
  await perValue.set(key, VALUE);
  coldKeys.push(key);
}
let coldIndex = 0;

Deno.bench("plain get", { group: "get 1 KiB", baseline: true }, async () => {
  await plain.get("bench/plain");
});

Deno.bench("zk get, cached key", { group: "get 1 KiB" }, async () => {
  await reuse.get("bench/zk");
});

Deno.bench("zk get, cold (one Argon2id run)", {
  group: "get 1 KiB",
  ...COLD_RUNS,
}, async (b) => {
  // A fresh client has an empty key cache.
  const reader = new Client("http://stash.test", { fetch, zkKey: PASSPHRASE });
  const key = coldKeys[coldIndex++ % coldKeys.length] as string;
  b.start();
  await reader.get(key);
  b.end();
  await reader.close();
});

Deno.bench("plain set", { group: "set 1 KiB", baseline: true }, async () => {
  await plain.set("bench/plain", VALUE);
});

Deno.bench("zk set, salt reuse", { group: "set 1 KiB" }, async () => {
  await reuse.set("bench/zk", VALUE);
});

Deno.bench("zk set, one salt per value", {
  group: "set 1 KiB",
  ...COLD_RUNS,
}, async () => {
  await perValue.set("bench/zk-per-value", VALUE);
});

// The same reads and writes over a loopback socket, where the request
// itself costs what it costs against a real server on the same host.
const listener = await server.listen();
const plainSocket = new Client(listener.url);
const reuseSocket = new Client(listener.url, { zkKey: PASSPHRASE });
await reuseSocket.set("bench/zk-socket", VALUE);
await reuseSocket.get("bench/zk-socket");

Deno.bench("plain get over loopback", {
  group: "get 1 KiB over loopback",
  baseline: true,
}, async () => {
  await plainSocket.get("bench/plain");
});

Deno.bench("zk get over loopback, cached key", {
  group: "get 1 KiB over loopback",
}, async () => {
  await reuseSocket.get("bench/zk-socket");
});

Deno.bench("plain set over loopback", {
  group: "set 1 KiB over loopback",
  baseline: true,
}, async () => {
  await plainSocket.set("bench/plain", VALUE);
});

Deno.bench("zk set over loopback, salt reuse", {
  group: "set 1 KiB over loopback",
}, async () => {
  await reuseSocket.set("bench/zk-socket", VALUE);
});

globalThis.addEventListener("unload", () => {
  void plainSocket.close();
  void reuseSocket.close();
  void listener.close();
  void plain.close();
  void reuse.close();
  void perValue.close();
  void server.close();
});
