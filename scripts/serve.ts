// deno-lint-ignore-file no-console -- prints the URL and usage errors
/**
 * Starts the in-process Stash server on 127.0.0.1 and prints its URL, so
 * that the live test suite can run against a real socket:
 *
 *   deno run --allow-net=127.0.0.1 scripts/serve.ts [--token T] [--history]
 *     [--version newest|v0.13.0]
 *
 * It listens on a free port and prints the URL as its first line. With
 * `--token`, auth is on and the token may read and write every key.
 * It runs until interrupted.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createStashServer } from "../testing.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    token: { type: "string" },
    history: { type: "boolean", default: false },
    version: { type: "string", default: "newest" },
  },
});

if (values.version !== "newest" && values.version !== "v0.13.0") {
  console.error(
    `Invalid --version ${values.version}: expected newest or v0.13.0`,
  );
  Deno.exit(2);
}

const server = createStashServer({
  version: values.version,
  history: values.history,
  ...(values.token === undefined
    ? {}
    : { tokens: [{ token: values.token, permissions: { "*": "rw" } }] }),
});
const listener = await server.listen();
console.log(listener.url);

Deno.addSignalListener("SIGTERM", async () => {
  await listener.close();
  await server.close();
  Deno.exit(0);
});
