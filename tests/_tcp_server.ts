/**
 * A raw TCP server on 127.0.0.1 for faults that an HTTP server cannot
 * express: a connection closed before the headers, a body cut short, a
 * stalled or dripping body, and event streams that end mid-line. It reads
 * each request head (and a `Content-Length` body), records it, and hands
 * the connection to the behaviour chosen for it.
 *
 * @module
 */

/** One request as the raw server parsed it. */
export interface RawRequest {
  /** HTTP method. */
  method: string;
  /** Request target as sent, still percent-encoded. */
  path: string;
  /** Request headers. */
  headers: Headers;
  /** Request body, read by its `Content-Length`. */
  body: Uint8Array;
}

/** Writes to one accepted connection; every method ignores a gone client. */
export interface RawConnection {
  /** The parsed request. */
  readonly request: RawRequest;
  /** Aborts when the server closes. */
  readonly signal: AbortSignal;
  /** Writes text or bytes; resolves false when the client is gone. */
  write(data: string | Uint8Array): Promise<boolean>;
  /** Waits `ms` milliseconds or until the server closes. */
  pause(ms: number): Promise<void>;
  /** Resolves when the client closes its side or the server closes. */
  untilClientCloses(): Promise<void>;
}

/** What the server does with one accepted connection after its request. */
export type Behavior = (connection: RawConnection) => Promise<void>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HEAD_END = encoder.encode("\r\n\r\n");
const MAX_HEAD_BYTES = 4 * 1024 * 1024;

/**
 * A loopback TCP server. Behaviours are used one per connection in order,
 * and the last one repeats for every later connection.
 */
export class TcpServer {
  readonly #listener: Deno.TcpListener;
  readonly #behaviors: Behavior[];
  readonly #closing = new AbortController();
  readonly #handlers = new Set<Promise<void>>();
  readonly #connections = new Set<Deno.TcpConn>();
  readonly #accepting: Promise<void>;
  /** Every request parsed so far, oldest first. */
  readonly requests: RawRequest[] = [];
  /** Connections accepted so far. */
  accepted = 0;

  /** Starts listening on 127.0.0.1 with a system-assigned port. */
  constructor(behaviors: Behavior | Behavior[]) {
    this.#behaviors = Array.isArray(behaviors) ? [...behaviors] : [behaviors];
    if (this.#behaviors.length === 0) {
      throw new RangeError("TcpServer needs at least one behaviour");
    }
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  /** The port the system assigned. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** Base URL, like `http://127.0.0.1:PORT`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Connections still open on the server side. */
  get openConnections(): number {
    return this.#connections.size;
  }

  /** Stops listening, closes every connection and waits for the handlers. */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    this.#listener.close();
    for (const connection of this.#connections) closeQuietly(connection);
    await this.#accepting;
    await Promise.all([...this.#handlers]);
  }

  /** Closes the server, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #accept(): Promise<void> {
    try {
      for await (const connection of this.#listener) {
        const behavior = this.#behaviors[
          Math.min(this.accepted, this.#behaviors.length - 1)
        ] as Behavior;
        this.accepted++;
        this.#connections.add(connection);
        const handler = this.#serve(connection, behavior).finally(() => {
          this.#connections.delete(connection);
          closeQuietly(connection);
          this.#handlers.delete(handler);
        });
        this.#handlers.add(handler);
      }
    } catch (error) {
      if (!this.#closing.signal.aborted) throw error;
    }
  }

  async #serve(connection: Deno.TcpConn, behavior: Behavior): Promise<void> {
    const request = await readRequest(connection).catch(() => undefined);
    if (request === undefined) return;
    this.requests.push(request);
    const signal = this.#closing.signal;
    const raw: RawConnection = {
      request,
      signal,
      write: async (data) => {
        const bytes = typeof data === "string" ? encoder.encode(data) : data;
        try {
          let offset = 0;
          while (offset < bytes.length) {
            offset += await connection.write(bytes.subarray(offset));
          }
          return true;
        } catch {
          return false;
        }
      },
      pause: (ms) => pause(ms, signal),
      untilClientCloses: () => untilClosed(connection, signal),
    };
    try {
      await behavior(raw);
    } catch {
      // A behaviour that fails on a gone client just ends the connection.
    }
  }
}

/**
 * Returns a port on 127.0.0.1 that was just opened and closed, so a
 * connection to it is refused.
 */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Builds a response head with `Connection: close` added. */
export function head(
  status: number,
  headers: Record<string, string> = {},
): string {
  const lines = [`HTTP/1.1 ${status} ${reason(status)}`];
  for (const [name, value] of Object.entries(headers)) {
    lines.push(`${name}: ${value}`);
  }
  lines.push("Connection: close");
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/** Closes the connection as soon as the request has arrived. */
export function closeBeforeHeaders(): Behavior {
  return async () => {};
}

/** Sends a complete response, then closes. */
export function respond(
  status: number,
  headers: Record<string, string>,
  body = "",
): Behavior {
  return async (connection) => {
    const bytes = encoder.encode(body);
    await connection.write(
      head(status, { ...headers, "Content-Length": String(bytes.length) }),
    );
    await connection.write(bytes);
  };
}

/**
 * Declares `body` in `Content-Length`, sends its first `sent` bytes, then
 * closes the connection.
 */
export function closeMidBody(body: string, sent: number): Behavior {
  return async (connection) => {
    const bytes = encoder.encode(body);
    await connection.write(
      head(200, {
        "Content-Type": "text/plain",
        "Content-Length": String(bytes.length),
      }),
    );
    await connection.write(bytes.subarray(0, sent));
  };
}

/**
 * Sends the headers and the first `sent` bytes of `body`, then nothing until
 * the client goes away or the server closes.
 */
export function stallAfterHeaders(body: string, sent = 0): Behavior {
  return async (connection) => {
    const bytes = encoder.encode(body);
    await connection.write(
      head(200, {
        "Content-Type": "text/plain",
        "Content-Length": String(bytes.length),
      }),
    );
    if (sent > 0) await connection.write(bytes.subarray(0, sent));
    await connection.untilClientCloses();
  };
}

/** Sends the headers, then `body` one byte every `intervalMs`. */
export function dripBody(body: string, intervalMs: number): Behavior {
  return async (connection) => {
    const bytes = encoder.encode(body);
    const written = await connection.write(
      head(200, {
        "Content-Type": "text/plain",
        "Content-Length": String(bytes.length),
      }),
    );
    if (!written) return;
    for (let offset = 0; offset < bytes.length; offset++) {
      await connection.pause(intervalMs);
      if (connection.signal.aborted) return;
      if (!await connection.write(bytes.subarray(offset, offset + 1))) return;
    }
  };
}

/** How {@link eventStream} ends its stream. */
export interface EventStreamPlan {
  /** Complete `change` events to send, as their JSON data. */
  events: string[];
  /** Text sent after the events, such as half of another event. */
  tail?: string;
  /**
   * Frame the body with chunked encoding and close without the final
   * chunk, which the client sees as a broken body, instead of ending a
   * close-delimited body cleanly.
   */
  chunked?: boolean;
}

/**
 * Speaks HTTP/1.1 with `Content-Type: text/event-stream`: sends the events
 * of the plan, then the tail, then closes the connection.
 */
export function eventStream(plan: EventStreamPlan): Behavior {
  return async (connection) => {
    const chunked = plan.chunked ?? false;
    const headers: Record<string, string> = {
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-cache",
    };
    if (chunked) headers["Transfer-Encoding"] = "chunked";
    await connection.write(head(200, headers));
    const send = (text: string) => {
      if (!chunked) return connection.write(text);
      const bytes = encoder.encode(text);
      return connection.write(`${bytes.length.toString(16)}\r\n${text}\r\n`);
    };
    for (const data of plan.events) {
      if (!await send(`event: change\ndata: ${data}\n\n`)) return;
    }
    if (plan.tail !== undefined && plan.tail !== "") await send(plan.tail);
    // A short pause lets the client read the last bytes before the close.
    await connection.pause(5);
  };
}

/** Formats the JSON data of one change event, as Stash sends it. */
export function changeData(
  key: string,
  action: "create" | "update" | "delete",
  second: number,
): string {
  const timestamp = new Date(Date.UTC(2026, 0, 3, 10, 30, second))
    .toISOString().replace(".000Z", "Z");
  return JSON.stringify({ key, action, timestamp });
}

async function readRequest(connection: Deno.TcpConn): Promise<RawRequest> {
  let buffer: Uint8Array = new Uint8Array(0);
  let headEnd = -1;
  while (headEnd < 0) {
    const chunk = new Uint8Array(65536);
    const read = await connection.read(chunk);
    if (read === null) throw new Error("client closed before the request");
    buffer = join(buffer, chunk.subarray(0, read));
    headEnd = indexOf(buffer, HEAD_END);
    if (headEnd < 0 && buffer.length > MAX_HEAD_BYTES) {
      throw new Error("request head too large");
    }
  }
  const lines = decoder.decode(buffer.subarray(0, headEnd)).split("\r\n");
  const [method = "", path = ""] = (lines[0] ?? "").split(" ");
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
  }
  const length = Number(headers.get("content-length") ?? "0");
  let body: Uint8Array = buffer.subarray(headEnd + HEAD_END.length);
  while (body.length < length) {
    const chunk = new Uint8Array(65536);
    const read = await connection.read(chunk);
    if (read === null) break;
    body = join(body, chunk.subarray(0, read));
  }
  return { method, path, headers, body: body.slice(0, length) };
}

async function untilClosed(
  connection: Deno.TcpConn,
  signal: AbortSignal,
): Promise<void> {
  const onAbort = () => closeQuietly(connection);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const chunk = new Uint8Array(1024);
    while (!signal.aborted) {
      if (await connection.read(chunk) === null) return;
    }
  } catch {
    // A reset or a close from the server side ends the wait.
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function closeQuietly(connection: Deno.TcpConn): void {
  try {
    connection.close();
  } catch {
    // Already closed.
  }
}

function join(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

function reason(status: number): string {
  const reasons: Record<number, string> = {
    200: "OK",
    302: "Found",
    404: "Not Found",
    429: "Too Many Requests",
    502: "Bad Gateway",
    503: "Service Unavailable",
  };
  return reasons[status] ?? "Status";
}
