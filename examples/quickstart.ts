// deno-lint-ignore-file no-console -- the demo prints a transcript
/**
 * A short tour of the client, run by `deno task demo`.
 *
 * With STASH_URL set (and STASH_TOKEN when the server has auth), it talks
 * to that server and writes only under the `demo/` prefix, deleting what it
 * wrote at the end. Without STASH_URL it starts the in-process test server
 * on 127.0.0.1 and uses that.
 *
 * @module
 */

import { Client, Format, NotFoundError } from "../mod.ts";
import { createStashServer } from "../testing.ts";

const url = Deno.env.get("STASH_URL");
const token = Deno.env.get("STASH_TOKEN");
let stopServer: (() => Promise<void>) | undefined;
let baseUrl: string;

if (url === undefined || url === "") {
  const server = createStashServer();
  const listener = await server.listen();
  baseUrl = listener.url;
  stopServer = async () => {
    await listener.close();
    await server.close();
  };
  console.log(
    `No STASH_URL set: started the in-process Stash server at ${baseUrl}`,
  );
} else {
  baseUrl = url;
  console.log(`Using the Stash server at ${baseUrl}`);
}

const client = new Client(baseUrl, token === undefined ? {} : { token });

function show(label: string, value: unknown): void {
  console.log(`  ${label.padEnd(36)} ${value}`);
}

try {
  console.log(`\nping()`);
  show("server answers pong", await client.ping());

  console.log(`\nset() with formats`);
  const config = await client.setJson("demo/app/config", {
    debug: true,
    level: "info",
  });
  show('setJson("demo/app/config")', `stored as ${config.key}`);
  await client.set("demo/app/motd", "Hello from Stash", Format.Text);
  show('set("demo/app/motd", text)', "ok");
  await client.set("demo/app/settings.yaml", "replicas: 3\n", {
    format: Format.Yaml,
  });
  show('set("demo/app/settings.yaml", yaml)', "ok");
  const spaced = await client.set("demo/my key", "spaces become _");
  show('set("demo/my key")', `stored as ${spaced.key}`);

  console.log(`\nget() and friends`);
  show(
    'get("demo/app/motd")',
    JSON.stringify(await client.get("demo/app/motd")),
  );
  show(
    'getJson("demo/app/config")',
    JSON.stringify(await client.getJson("demo/app/config")),
  );
  show(
    'getBytes("demo/app/settings.yaml")',
    `${(await client.getBytes("demo/app/settings.yaml")).length} bytes`,
  );
  show(
    'getOrDefault("demo/app/missing")',
    JSON.stringify(await client.getOrDefault("demo/app/missing", "fallback")),
  );

  console.log(`\nlist("demo/app/")`);
  for (const info of await client.list("demo/app/")) {
    show(
      info.key,
      `${info.format}, ${info.size} bytes, updated ${info.updatedAt.toISOString()}`,
    );
  }

  console.log(`\ninfo() and has()`);
  const info = await client.info("demo/app/config");
  show('info("demo/app/config")', `${info.format}, ${info.size} bytes`);
  show('has("demo/app/config")', await client.has("demo/app/config"));
  show('has("demo/app/conf")', await client.has("demo/app/conf"));

  console.log(`\nerrors`);
  try {
    await client.get("demo/app/missing");
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    show("get of a missing key", `${error.name}: ${error.message}`);
  }

  console.log(`\ncleanup`);
  for (
    const key of [
      "demo/app/config",
      "demo/app/motd",
      "demo/app/settings.yaml",
      "demo/my_key",
    ]
  ) {
    await client.delete(key);
  }
  show("deleted", "4 keys under demo/");
} finally {
  await client.close();
  await stopServer?.();
}
