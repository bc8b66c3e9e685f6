// deno-lint-ignore-file no-console -- the skip prints why

// The client suite against a real Stash server:
//   STASH_URL=http://host:8484 [STASH_TOKEN=...] deno task test:live
// Without STASH_URL the test is skipped with a message.

import { Client } from "../mod.ts";
import { runClientSuite, suitePrefix } from "./_client_suite.ts";

const url = Deno.env.get("STASH_URL") ?? "";
const token = Deno.env.get("STASH_TOKEN");

if (url === "") {
  console.log(
    "live_test.ts: skipped, set STASH_URL to run it against a server",
  );
}

Deno.test({
  name: "client against the server at STASH_URL",
  ignore: url === "",
  fn: async (t) => {
    await runClientSuite(t, {
      prefix: suitePrefix(),
      client: (options = {}) =>
        new Client(url, {
          ...(token === undefined ? {} : { token }),
          ...options,
        }),
    });
  },
});
