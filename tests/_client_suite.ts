// deno-lint-ignore-file no-console -- skipped steps print why

// The client test suite for every kind of server. It runs against the
// in-process server through an injected fetch, the same server over a
// loopback socket, and a real Stash server when STASH_URL is set. Every
// key it writes lives under a fresh prefix and is deleted at the end.

import assert from "node:assert/strict";
import {
  type ChangeEvent,
  type Client,
  type ClientOptions,
  Format,
  type KeyInfo,
  NotFoundError,
  StashError,
  UnsupportedError,
  type WatchUpdate,
} from "../mod.ts";

/** A server to run the suite against. */
export interface SuiteTarget {
  /** Creates a client for the server; options override the defaults. */
  client(options?: ClientOptions): Client;
  /** Prefix under which the suite writes; unique per run. */
  prefix: string;
}

const SKIP = (reason: string) => console.log(`    skipped: ${reason}`);

/** Keys that need exact encoding: [key relative to the prefix, stored key]. */
export const KEY_TABLE: ReadonlyArray<readonly [string, string]> = [
  ["plain", "plain"],
  ["nested/deeper/key", "nested/deeper/key"],
  ["history/x", "history/x"],
  ["subscribe/x", "subscribe/x"],
  ["a/../b", "a/../b"],
  ["./rel", "./rel"],
  ["50%", "50%"],
  ["%41%2F", "%41%2F"],
  ["what?", "what?"],
  ["#tag", "#tag"],
  ["a+b", "a+b"],
  ["a&b=c", "a&b=c"],
  ["semi;colon,comma", "semi;colon,comma"],
  ['quote"s', 'quote"s'],
  ["back\\slash", "back\\slash"],
  ["tilde~star*", "tilde~star*"],
  ["✓ unicode", "✓_unicode"],
  ["emoji 😀", "emoji_😀"],
  ["my key", "my_key"],
  ["ping", "ping"],
  ["x/PING", "x/PING"],
  ["UPPER/lower", "UPPER/lower"],
  ["dots...", "dots..."],
  ["trailing/", "trailing"],
  ["tab\u00A0nbsp", "tab\u00A0nbsp"],
];

function randomSuffix(): string {
  return crypto.randomUUID().slice(0, 8);
}

/** Registers the shared steps on `t`; deletes every key written under the prefix. */
export async function runClientSuite(
  t: Deno.TestContext,
  target: SuiteTarget,
): Promise<void> {
  const p = target.prefix;
  await using client = target.client();
  try {
    await defineSteps(t, target, client, p);
  } finally {
    for (const info of await client.list(`${p}/`)) {
      await client.delete(info.key).catch(() => {});
    }
  }
}

async function defineSteps(
  t: Deno.TestContext,
  target: SuiteTarget,
  client: Client,
  p: string,
): Promise<void> {
  await t.step("ping", async () => {
    assert.equal(await client.ping(), true);
  });

  await t.step("set and get text", async () => {
    const result = await client.set(`${p}/text`, "hello");
    assert.equal(result.key, `${p}/text`);
    assert.ok(result.created === true || result.created === undefined);
    assert.equal(await client.get(`${p}/text`), "hello");
  });

  await t.step("overwrite reports not created when known", async () => {
    const result = await client.set(`${p}/text`, "hello again");
    assert.notEqual(result.created, true);
    assert.equal(await client.get(`${p}/text`), "hello again");
  });

  await t.step("binary values round trip byte for byte", async () => {
    const bytes = new Uint8Array(256).map((_, index) => index);
    await client.set(`${p}/binary`, bytes);
    assert.deepEqual(await client.getBytes(`${p}/binary`), bytes);
  });

  await t.step("invalid UTF-8 points to getBytes", async () => {
    await client.set(`${p}/latin1`, new Uint8Array([0x63, 0x61, 0x66, 0xe9]));
    await assert.rejects(
      client.get(`${p}/latin1`),
      (error: Error) =>
        error instanceof StashError && /getBytes/.test(error.message) &&
        /not valid UTF-8/.test(error.message),
    );
  });

  await t.step("byte order mark is kept", async () => {
    await client.set(`${p}/bom`, "\uFEFFbom");
    assert.equal(await client.get(`${p}/bom`), "\uFEFFbom");
  });

  await t.step("empty value", async () => {
    await client.set(`${p}/empty`, "");
    assert.equal(await client.get(`${p}/empty`), "");
    assert.equal((await client.info(`${p}/empty`)).size, 0);
  });

  await t.step("getOrDefault", async () => {
    assert.equal(await client.getOrDefault(`${p}/absent`, null), null);
    assert.equal(await client.getOrDefault(`${p}/text`, "x"), "hello again");
  });

  await t.step("setJson and getJson", async () => {
    const value = { debug: true, list: [1, 2], nested: { name: "ü" } };
    await client.setJson(`${p}/json`, value);
    assert.deepEqual(await client.getJson(`${p}/json`), value);
    assert.equal((await client.info(`${p}/json`)).format, "json");
    await assert.rejects(
      client.getJson(`${p}/text`),
      (error: Error) =>
        error instanceof StashError && /not valid JSON/.test(error.message),
    );
  });

  await t.step("every format is stored", async () => {
    for (const format of Object.values(Format)) {
      await client.set(`${p}/format/${format}`, "x", format);
      assert.equal((await client.info(`${p}/format/${format}`)).format, format);
    }
  });

  await t.step("overwrite keeps creation time and changes format", async () => {
    await client.set(`${p}/over`, "1", "text");
    const before = await client.info(`${p}/over`);
    await client.set(`${p}/over`, "{}", { format: "json" });
    const after = await client.info(`${p}/over`);
    assert.equal(after.createdAt.getTime(), before.createdAt.getTime());
    assert.ok(after.updatedAt.getTime() >= before.updatedAt.getTime());
    assert.equal(after.format, "json");
    assert.equal(after.size, 2);
  });

  await t.step("delete", async () => {
    await client.set(`${p}/doomed`, "x");
    await client.delete(`${p}/doomed`);
    await assert.rejects(client.get(`${p}/doomed`), NotFoundError);
    const error = await client.delete(`${p}/doomed`).catch((e) => e);
    assert.ok(error instanceof NotFoundError);
    assert.equal(error.key, `${p}/doomed`);
    assert.equal(error.status, 404);
  });

  await t.step("missing key", async () => {
    const error = await client.get(`${p}/absent`).catch((e) => e);
    assert.ok(error instanceof NotFoundError);
    assert.equal(error.key, `${p}/absent`);
    assert.match(error.message, /not found/);
  });

  await t.step("info and has ignore keys sharing the prefix", async () => {
    await client.set(`${p}/share/ab`, "ab");
    await client.set(`${p}/share/a/b`, "a/b");
    await assert.rejects(client.info(`${p}/share/a`), NotFoundError);
    assert.equal(await client.has(`${p}/share/a`), false);
    await client.set(`${p}/share/a`, "a");
    const info = await client.info(`${p}/share/a`);
    assert.equal(info.key, `${p}/share/a`);
    assert.equal(info.size, 1);
    assert.equal(await client.has(`${p}/share/a`), true);
  });

  await t.step("list by prefix", async () => {
    await client.set(`${p}/list/app`, "1");
    await client.set(`${p}/list/application`, "22");
    await client.set(`${p}/list/other`, "333");
    const keys = (await client.list(`${p}/list/app`)).map((i) => i.key).sort();
    assert.deepEqual(keys, [`${p}/list/app`, `${p}/list/application`]);
    const all = await client.list(`${p}/list/`);
    assert.equal(all.length, 3);
    assert.equal(all[0]?.key, `${p}/list/other`, "newest update first");
    for (const info of all) assertKeyInfo(info);
  });

  await t.step("list with no match is empty", async () => {
    assert.deepEqual(await client.list(`${p}/nothing-here/`), []);
  });

  await t.step("iterating the client lists every key", async () => {
    const seen: string[] = [];
    for await (const info of client) {
      if (info.key.startsWith(`${p}/list/`)) seen.push(info.key);
    }
    assert.equal(seen.length, 3);
  });

  await t.step("key table", async (t) => {
    for (const [relative, stored] of KEY_TABLE) {
      await t.step(JSON.stringify(relative), async () => {
        const key = `${p}/keys/${relative}`;
        const value = `value of ${relative}`;
        const result = await client.set(key, value);
        assert.equal(result.key, `${p}/keys/${stored}`);
        assert.equal(await client.get(key), value);
        assert.equal(await client.get(result.key), value);
        assert.equal(await client.has(key), true);
        assert.equal((await client.info(key)).key, result.key);
        await client.delete(key);
        assert.equal(await client.has(key), false);
      });
    }
  });

  await t.step("edge whitespace and slashes are trimmed", async () => {
    const result = await client.set(` /${p}/edge/ `, "e");
    assert.equal(result.key, `${p}/edge`);
    assert.equal(await client.get(`${p}/edge`), "e");
  });

  await t.step("history", async () => {
    const key = `${p}/history`;
    await client.set(key, "one");
    await client.set(key, "two");
    let entries;
    try {
      entries = await client.history(key);
    } catch (error) {
      if (error instanceof StashError && /without git/.test(error.message)) {
        SKIP("the server runs without git history");
        return;
      }
      throw error;
    }
    assert.ok(entries.length >= 2);
    const [newest, older] = entries;
    assert.equal(new TextDecoder().decode(newest?.value), "two");
    assert.equal(new TextDecoder().decode(older?.value), "one");
    assert.match(newest?.hash ?? "", /^[0-9a-f]{7,40}$/);
    assert.ok(newest?.timestamp instanceof Date);
  });

  await subscriptionSteps(t, client, p);

  await t.step("zero-knowledge round trip", async () => {
    await using secret = target.client({
      zkKey: "suite passphrase 0123456789",
    });
    const key = `${p}/zk/value`;
    await secret.set(key, "top secret");
    assert.equal(await secret.get(key), "top secret");
    const stored = await client.get(key);
    assert.ok(stored.startsWith("$ZK$"), stored);
    assert.ok(!stored.includes("top secret"));
    const info = await client.info(key);
    assert.equal(info.size, stored.length);
    assert.ok(info.zkEncrypted === true || info.zkEncrypted === undefined);
  });
}

/** Resolves to `undefined` after `ms`, clearing its timer when `pending` settles first. */
async function within<T>(
  pending: Promise<T>,
  ms: number,
): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([pending, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function subscriptionSteps(
  t: Deno.TestContext,
  client: Client,
  p: string,
): Promise<void> {
  await t.step("subscription receives changes", async () => {
    const key = `${p}/sub/value`;
    await using subscription = client.subscribe(key);
    const events = subscription[Symbol.asyncIterator]();
    const next = events.next();
    next.catch(() => {});
    // Stash sends no headers until the first event, so nothing shows when
    // the server has registered the subscription: write until one arrives.
    let result: IteratorResult<ChangeEvent, undefined> | undefined;
    for (let attempt = 0; attempt < 50 && result === undefined; attempt++) {
      try {
        await client.set(key, `value ${attempt}`);
        result = await within(next, 100);
      } catch (error) {
        if (error instanceof UnsupportedError) {
          SKIP("the server has no subscription endpoint");
          return;
        }
        throw error;
      }
    }
    assert.ok(result !== undefined, "no change event within 50 writes");
    assert.equal(result.done, false);
    assert.equal(result.value?.key, key);
    assert.ok(
      result.value?.action === "create" || result.value?.action === "update",
    );
    assert.ok(result.value?.timestamp instanceof Date);
  });

  await t.step("watch ends on the latest value", async () => {
    const key = `${p}/sub/watched`;
    await client.set(key, "initial");
    await using watch = client.watch(key, { resyncDelay: 50 });
    const updates = watch[Symbol.asyncIterator]();
    let first;
    try {
      first = await within(updates.next(), 5000);
    } catch (error) {
      // Over a socket the refused subscription can end the watch before
      // the first read returns.
      if (error instanceof UnsupportedError) {
        SKIP("the server has no subscription endpoint");
        return;
      }
      throw error;
    }
    assert.ok(first !== undefined, "no first value within 5 s");
    assert.deepEqual(first.value, { key, exists: true, value: "initial" });
    let latest: WatchUpdate | undefined;
    for (let attempt = 0; attempt < 50; attempt++) {
      await client.set(key, "final");
      let next;
      try {
        next = await within(updates.next(), 100);
      } catch (error) {
        if (error instanceof UnsupportedError) {
          SKIP("the server has no subscription endpoint");
          return;
        }
        throw error;
      }
      if (next?.done === false) latest = next.value;
      if (latest?.exists && latest.value === "final") break;
    }
    assert.deepEqual(latest, { key, exists: true, value: "final" });
  });
}

function assertKeyInfo(info: KeyInfo): void {
  assert.equal(typeof info.key, "string");
  assert.ok(Number.isInteger(info.size));
  assert.equal(typeof info.format, "string");
  assert.ok(info.createdAt instanceof Date);
  assert.ok(!Number.isNaN(info.createdAt.getTime()));
  assert.ok(info.updatedAt instanceof Date);
}

/** Returns a unique prefix for one run of the suite. */
export function suitePrefix(): string {
  return `stash-client-test/${randomSuffix()}`;
}
