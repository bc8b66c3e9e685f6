import assert from "node:assert/strict";
import {
  Client,
  type ClientOptions,
  ClosedError,
  ConnectionError,
  NotFoundError,
  RateLimitError,
  ResponseError,
  type RetryEvent,
  TimeoutError,
} from "../mod.ts";
import {
  backoffDelay,
  rateLimitDelay,
  type RetryPolicy,
} from "../src/retry.ts";

interface Sent {
  method: string;
  url: string;
  headers: Headers;
  body: Uint8Array | undefined;
}

type Step = (sent: Sent, signal: AbortSignal) => Response | Promise<Response>;

/** Returns a fetch that responds to each request with the next step of a script. */
function scripted(...steps: Step[]) {
  const sent: Sent[] = [];
  const fetch = async (input: URL | Request | string, init?: RequestInit) => {
    const request: Sent = {
      method: init?.method ?? "GET",
      url: String(input),
      headers: new Headers(init?.headers),
      body: init?.body as Uint8Array | undefined,
    };
    sent.push(request);
    const step = steps.shift();
    assert.ok(step, `unexpected request ${request.method} ${request.url}`);
    return await step(request, init?.signal as AbortSignal);
  };
  return {
    fetch,
    sent,
    get left() {
      return steps.length;
    },
  };
}

const ok = (body = "v") => () => new Response(body, { status: 200 });
const status = (code: number, body = "", headers: HeadersInit = {}) => () =>
  new Response(code === 204 ? null : body, { status: code, headers });
const refuse = () => () => Promise.reject(new TypeError("connection refused"));

function neverResolves(_sent: Sent, signal: AbortSignal): Promise<Response> {
  return new Promise((_, reject) => {
    signal.addEventListener("abort", () => reject(signal.reason), {
      once: true,
    });
  });
}

function stalledBody(): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode("partial"));
    },
  });
  return new Response(body, { status: 200 });
}

function testClient(
  fetch: NonNullable<ClientOptions["fetch"]>,
  options: ClientOptions = {},
) {
  const delays: number[] = [];
  const retries: RetryEvent[] = [];
  const client = new Client("http://stash.test/base/", {
    fetch,
    random: () => 0.5,
    sleep: (ms) => {
      delays.push(ms);
      return Promise.resolve();
    },
    onRetry: (event) => retries.push(event),
    ...options,
  });
  return { client, delays, retries };
}

Deno.test("retries", async (t) => {
  await t.step("network errors are retried up to the count", async () => {
    const script = scripted(refuse(), refuse(), refuse(), refuse());
    const { client, delays, retries } = testClient(script.fetch);
    const error = await client.get("k").catch((e) => e);
    assert.ok(error instanceof ConnectionError);
    assert.equal(error.key, "k");
    assert.equal(error.method, "GET");
    assert.match(error.message, /"k"/);
    assert.match(error.message, /connection refused/);
    assert.ok(error.cause instanceof TypeError);
    assert.equal(script.sent.length, 4);
    assert.deepEqual(delays, [50, 100, 200]);
    assert.deepEqual(retries.map((r) => r.retry), [1, 2, 3]);
    assert.ok(retries[0]?.error instanceof ConnectionError);
  });

  await t.step("network error then success", async () => {
    const script = scripted(refuse(), ok("value"));
    const { client } = testClient(script.fetch);
    assert.equal(await client.get("k"), "value");
  });

  await t.step("retryable statuses", async () => {
    for (const code of [500, 502, 503, 504]) {
      const script = scripted(status(code), ok());
      const { client, retries } = testClient(script.fetch);
      assert.equal(await client.get("k"), "v");
      assert.equal(retries[0]?.status, code);
    }
  });

  await t.step("final retryable status is a ResponseError", async () => {
    const script = scripted(
      status(502, "<html><title>Bad Gateway</title></html>", {
        "content-type": "text/html",
      }),
      status(502, "<html><title>Bad Gateway</title></html>", {
        "content-type": "text/html",
      }),
    );
    const { client } = testClient(script.fetch, { retries: 1 });
    const error = await client.get("k").catch((e) => e);
    assert.ok(error instanceof ResponseError);
    assert.equal(error.status, 502);
    assert.equal(error.serverMessage, "Bad Gateway");
    assert.match(error.message, /502/);
  });

  await t.step("other 4xx are never retried", async () => {
    for (const code of [400, 401, 403, 404, 405, 409, 413]) {
      const script = scripted(status(code));
      const { client } = testClient(script.fetch);
      await assert.rejects(client.get("k"), ResponseError);
      assert.equal(script.sent.length, 1, `status ${code}`);
    }
  });

  await t.step("Stash JSON 503 is not retried", async () => {
    const script = scripted(
      status(503, '{"error":"git integration not enabled"}\n', {
        "content-type": "application/json; charset=utf-8",
      }),
    );
    const { client } = testClient(script.fetch);
    await assert.rejects(client.history("k"), ResponseError);
    assert.equal(script.sent.length, 1);
  });

  await t.step("retries zero sends once", async () => {
    const script = scripted(status(503));
    const { client } = testClient(script.fetch, { retries: 0 });
    await assert.rejects(client.get("k"), ResponseError);
    assert.equal(script.sent.length, 1);
  });

  await t.step("request body is re-sent unchanged", async () => {
    const script = scripted(refuse(), status(500), status(200));
    const { client } = testClient(script.fetch);
    const value = new Uint8Array([1, 2, 3]);
    const pending = client.set("k", value);
    value[0] = 9;
    await pending;
    assert.equal(script.sent.length, 3);
    for (const request of script.sent) {
      assert.deepEqual(request.body, new Uint8Array([1, 2, 3]));
      assert.equal(request.method, "PUT");
      assert.equal(request.headers.get("x-stash-format"), "text");
    }
  });
});

Deno.test("backoff", async (t) => {
  const policy = (random: number): RetryPolicy => ({
    retries: 10,
    baseDelay: 100,
    maxDelay: 1000,
    random: () => random,
    now: () => 0,
    sleep: () => Promise.resolve(),
  });

  await t.step("full jitter spans zero to the ceiling", () => {
    assert.equal(backoffDelay(0, policy(0)), 0);
    assert.equal(backoffDelay(0, policy(0.999)), 99);
    assert.equal(backoffDelay(3, policy(0.999)), 799);
  });

  await t.step("ceiling is capped at maxDelay", () => {
    assert.equal(backoffDelay(8, policy(0.999)), 999);
    assert.equal(backoffDelay(50, policy(0.5)), 500);
  });

  await t.step("rate limit wait sources", () => {
    const p = policy(0);
    assert.equal(rateLimitDelay(new Headers({ "retry-after": "3" }), p), 3000);
    assert.equal(
      rateLimitDelay(
        new Headers({ "retry-after": new Date(5000).toUTCString() }),
        p,
      ),
      5000,
    );
    assert.equal(
      rateLimitDelay(new Headers({ "ratelimit-reset": "2" }), p),
      2000,
    );
    assert.equal(
      rateLimitDelay(
        new Headers({ "retry-after": "1", "ratelimit-reset": "9" }),
        p,
      ),
      1000,
    );
    assert.equal(rateLimitDelay(new Headers(), p), 1000);
    assert.equal(
      rateLimitDelay(new Headers({ "retry-after": "soon" }), p),
      1000,
    );
  });

  await t.step("rate limit jitter stops at maxDelay", () => {
    const wait = rateLimitDelay(
      new Headers({ "retry-after": "1" }),
      policy(0.999),
    );
    assert.equal(wait, 1000);
  });

  await t.step("rate limit jitter adds at most a tenth", () => {
    const wait = rateLimitDelay(
      new Headers({ "retry-after": "2" }),
      { ...policy(0.999), maxDelay: 10_000 },
    );
    assert.ok(wait > 2000, String(wait));
    assert.ok(wait <= 2200, String(wait));
  });
});

Deno.test("rate limiting", async (t) => {
  await t.step("429 waits for Retry-After then succeeds", async () => {
    const script = scripted(
      status(429, "slow down", { "retry-after": "2" }),
      ok(),
    );
    const { client, delays } = testClient(script.fetch);
    assert.equal(await client.get("k"), "v");
    assert.deepEqual(delays, [2100]);
  });

  await t.step("window equal to maxRetryDelay is waited out", async () => {
    for (const random of [0, 0.5, 0.999]) {
      const script = scripted(status(429, "", { "retry-after": "30" }), ok());
      const { client, delays } = testClient(script.fetch, {
        random: () => random,
      });
      assert.equal(await client.get("k"), "v", `random ${random}`);
      assert.deepEqual(delays, [30_000], `random ${random}`);
    }
  });

  await t.step("window longer than maxRetryDelay fails at once", async () => {
    const script = scripted(status(429, "", { "retry-after": "3600" }));
    const { client, delays } = testClient(script.fetch);
    const error = await client.get("k").catch((e) => e);
    assert.ok(error instanceof RateLimitError);
    assert.equal(error.retryAfter, 3_600_000);
    assert.match(error.message, /retry in 3600 s/);
    assert.deepEqual(delays, []);
  });
});

Deno.test("timeouts and aborts", async (t) => {
  await t.step("headers that never come time out", async () => {
    const script = scripted(neverResolves, neverResolves);
    const { client } = testClient(script.fetch, { timeout: 20, retries: 1 });
    const error = await client.get("k").catch((e) => e);
    assert.ok(error instanceof TimeoutError);
    assert.equal(error.timeout, 20);
    assert.equal(error.key, "k");
    assert.match(error.message, /timed out after 20 ms/);
    assert.equal(script.sent.length, 2);
  });

  await t.step(
    "stalled body times out even if the stream ignores the signal",
    async () => {
      const script = scripted(stalledBody, ok("fine"));
      const { client } = testClient(script.fetch, { timeout: 20 });
      assert.equal(await client.get("k"), "fine");
      assert.equal(script.sent.length, 2);
    },
  );

  await t.step(
    "caller abort rejects with its reason and is not retried",
    async () => {
      const script = scripted(neverResolves);
      const { client } = testClient(script.fetch);
      const controller = new AbortController();
      const pending = client.get("k", { signal: controller.signal });
      const reason = new Error("caller gave up");
      controller.abort(reason);
      await assert.rejects(pending, (error) => error === reason);
      assert.equal(script.sent.length, 1);
    },
  );

  await t.step("aborted signal sends nothing", async () => {
    const script = scripted();
    const { client } = testClient(script.fetch);
    await assert.rejects(
      client.get("k", { signal: AbortSignal.abort() }),
      (error: Error) => error.name === "AbortError",
    );
    assert.equal(script.sent.length, 0);
  });

  await t.step("abort during backoff stops the retries", async () => {
    const controller = new AbortController();
    const script = scripted(status(503));
    const client = new Client("http://stash.test", {
      fetch: script.fetch,
      sleep: (_ms, signal) =>
        new Promise((_, reject) => {
          controller.abort(new Error("stop"));
          reject(signal?.reason);
        }),
    });
    await assert.rejects(
      client.get("k", { signal: controller.signal }),
      /stop/,
    );
    assert.equal(script.sent.length, 1);
  });

  await t.step("close aborts calls in flight", async () => {
    const script = scripted(neverResolves);
    const { client } = testClient(script.fetch);
    const pending = client.get("k");
    await Promise.resolve();
    await client.close();
    await assert.rejects(pending, ClosedError);
    await assert.rejects(client.get("k"), ClosedError);
  });
});

Deno.test("delete retried after a lost response", async (t) => {
  await t.step("404 after a 502 means the first attempt deleted", async () => {
    const script = scripted(
      status(502),
      status(404, '{"error":"key not found"}', {
        "content-type": "application/json",
      }),
    );
    const { client } = testClient(script.fetch);
    await client.delete("k");
    assert.equal(script.sent.length, 2);
  });

  await t.step("404 after a connection error means deleted", async () => {
    const script = scripted(refuse(), status(404));
    const { client } = testClient(script.fetch);
    await client.delete("k");
  });

  await t.step("404 after a 429 is still NotFoundError", async () => {
    const script = scripted(status(429), status(404));
    const { client } = testClient(script.fetch);
    await assert.rejects(client.delete("k"), NotFoundError);
  });

  await t.step("404 on the first attempt is NotFoundError", async () => {
    const script = scripted(status(404));
    const { client } = testClient(script.fetch);
    await assert.rejects(client.delete("k"), NotFoundError);
  });
});

Deno.test("redirects", async (t) => {
  await t.step(
    "same-origin redirect keeps method, body and token",
    async () => {
      const script = scripted(
        status(307, "", { location: "/moved/kv/k" }),
        status(201),
      );
      const { client } = testClient(script.fetch, { token: "secret-token" });
      const result = await client.set("k", "value");
      assert.equal(result.created, true);
      const [first, second] = script.sent;
      assert.equal(first?.url, "http://stash.test/base/kv/k");
      assert.equal(second?.url, "http://stash.test/moved/kv/k");
      assert.equal(second?.method, "PUT");
      assert.equal(new TextDecoder().decode(second?.body), "value");
      assert.equal(second?.headers.get("authorization"), "Bearer secret-token");
    },
  );

  await t.step("another origin is not followed and gets no token", async () => {
    const script = scripted(
      status(302, "", { location: "http://elsewhere.test/kv/k" }),
    );
    const { client } = testClient(script.fetch, { token: "secret-token" });
    const error = await client.get("k").catch((e) => e);
    assert.ok(error instanceof ResponseError);
    assert.equal(error.status, 302);
    assert.match(error.message, /another origin \(http:\/\/elsewhere\.test\)/);
    assert.ok(!error.message.includes("secret-token"));
    assert.equal(script.sent.length, 1);
  });

  await t.step("https upgrade counts as another origin", async () => {
    const script = scripted(
      status(301, "", { location: "https://stash.test/base/kv/k" }),
    );
    const { client } = testClient(script.fetch, { token: "secret-token" });
    await assert.rejects(client.get("k"), /another origin/);
    assert.equal(script.sent.length, 1);
  });

  await t.step("redirect loop stops after maxRedirects", async () => {
    const loop = status(307, "", { location: "/base/kv/k" });
    const script = scripted(loop, loop, loop, loop);
    const { client } = testClient(script.fetch, { maxRedirects: 3 });
    await assert.rejects(client.get("k"), /redirected more than 3 times/);
    assert.equal(script.sent.length, 4);
  });
});

Deno.test("request shape", async (t) => {
  await t.step("base path and extra headers", async () => {
    const script = scripted(ok());
    const { client } = testClient(script.fetch, {
      token: "tok",
      headers: { "x-request-id": "abc", authorization: "Basic x" },
    });
    await client.get("a/b");
    const [request] = script.sent;
    assert.equal(request?.url, "http://stash.test/base/kv/a%2Fb");
    assert.equal(request?.headers.get("x-request-id"), "abc");
    assert.equal(request?.headers.get("authorization"), "Bearer tok");
  });

  await t.step("list query", async () => {
    const script = scripted(ok("null"), ok("[]"), ok("[]"));
    const { client } = testClient(script.fetch);
    assert.deepEqual(await client.list("app/x y&z"), []);
    assert.deepEqual(await client.list("", { filter: "secrets" }), []);
    assert.deepEqual(await client.list(), []);
    assert.deepEqual(script.sent.map((s) => new URL(s.url).search), [
      "?prefix=app%2Fx+y%26z",
      "?filter=secrets",
      "",
    ]);
  });
});
