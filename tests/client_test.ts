import assert from "node:assert/strict";
import { Client } from "../mod.ts";
import { createStashServer } from "../testing.ts";
import { runClientSuite, suitePrefix } from "./_client_suite.ts";

for (const version of ["newest", "v0.13.0"] as const) {
  Deno.test(`client against the ${version} server`, async (t) => {
    const server = createStashServer({ version, history: true });
    try {
      await runClientSuite(t, {
        prefix: suitePrefix(),
        client: (options = {}) =>
          new Client("http://stash.test", { fetch: server.fetch, ...options }),
      });
    } finally {
      await server.close();
    }
  });
}

Deno.test("client over a loopback socket", async (t) => {
  const server = createStashServer({ history: true });
  const listener = await server.listen();
  try {
    assert.match(listener.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    await runClientSuite(t, {
      prefix: suitePrefix(),
      client: (options = {}) => new Client(listener.url, options),
    });
  } finally {
    await listener.close();
    await server.close();
  }
});
