/**
 * HTTP helpers of the in-process server: the exchange being handled,
 * request body reading, Go-style path cleaning, and responses shaped like
 * the Go server's.
 *
 * @module
 */

import type { StreamFault } from "./sse_hub.ts";
import { encodeGoJson } from "./store.ts";

/** Content-Type of the server's JSON bodies. */
export const JSON_TYPE = "application/json; charset=utf-8";
/** Content-Type of the server's plain-text bodies. */
export const TEXT_TYPE = "text/plain; charset=utf-8";
const encoder = new TextEncoder();

/** One request being handled. */
export interface Exchange {
  request: Request;
  url: URL;
  body: Uint8Array;
  bodyState: "ok" | "tooLarge" | "failed";
  signal: AbortSignal;
  remoteAddr: string;
  headers: Headers;
  streamFault: StreamFault | undefined;
  keepSlot: boolean;
  release: () => void;
}

/**
 * Cleans a raw path as Go's `path.Clean` does, keeping a trailing slash:
 * collapses `//`, removes `.` and resolves `..` segments.
 */
export function cleanPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  const cleaned = `/${segments.join("/")}`;
  return path.endsWith("/") && cleaned !== "/" ? `${cleaned}/` : cleaned;
}

export function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

export async function readBody(
  request: Request,
  limit: number,
): Promise<{ bytes: Uint8Array; state: Exchange["bodyState"] }> {
  const empty = new Uint8Array();
  if (request.body === null) return { bytes: empty, state: "ok" };
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (declared > limit) {
    await request.body.cancel().catch(() => {});
    return { bytes: empty, state: "tooLarge" };
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        return {
          bytes: concat(chunks, size - value.length),
          state: "tooLarge",
        };
      }
      chunks.push(value);
    }
  } catch {
    return { bytes: concat(chunks, size), state: "failed" };
  }
  return { bytes: concat(chunks, size), state: "ok" };
}

export function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    if (offset + chunk.length > size) break;
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

export function withBody(request: Request, body: Uint8Array): Request {
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  return new Request(request.url, {
    method: request.method,
    headers: request.headers,
    body: hasBody ? toBody(body) : null,
  });
}

// Every buffer here is a plain ArrayBuffer (copies, reads and encodes), never
// a SharedArrayBuffer, so the narrowing is safe.
export function toBody(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}

export function requestId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(20));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Builds a response with the exchange's headers, Content-Type and
 * Content-Length. HEAD responses keep the headers and drop the body.
 */
export function reply(
  exchange: Exchange,
  status: number,
  body: string | Uint8Array,
  contentType: string | undefined,
  extra: { nosniff?: boolean } = {},
): Response {
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const headers = new Headers(exchange.headers);
  if (contentType !== undefined) headers.set("Content-Type", contentType);
  if (extra.nosniff) headers.set("X-Content-Type-Options", "nosniff");
  headers.set("Content-Length", String(bytes.length));
  const head = exchange.request.method === "HEAD";
  return new Response(head || bytes.length === 0 ? null : toBody(bytes), {
    status,
    headers,
  });
}

export function jsonError(
  exchange: Exchange,
  status: number,
  message: string,
): Response {
  return reply(exchange, status, encodeGoJson({ error: message }), JSON_TYPE);
}

export function unauthorized(exchange: Exchange): Response {
  return reply(exchange, 401, "Unauthorized\n", TEXT_TYPE, { nosniff: true });
}

export function notFound(exchange: Exchange): Response {
  return reply(exchange, 404, "404 page not found\n", TEXT_TYPE, {
    nosniff: true,
  });
}

// NOTE: Go's server rejects a malformed percent-encoding before routing; the
// exact status line and body of that rejection here are a guess.
export function badRequest(exchange: Exchange): Response {
  return reply(exchange, 400, "400 Bad Request", TEXT_TYPE);
}

/** Builds a redirect as Go's `http.Redirect` does: HTML body for GET only. */
export function redirect(
  exchange: Exchange,
  status: 301 | 307,
  location: string,
): Response {
  exchange.headers.set("Location", location);
  const method = exchange.request.method;
  if (method !== "GET" && method !== "HEAD") {
    return reply(exchange, status, "", undefined);
  }
  const text = status === 301 ? "Moved Permanently" : "Temporary Redirect";
  const body = `<a href="${escapeHtml(location)}">${text}</a>.\n\n`;
  return reply(exchange, status, body, "text/html; charset=utf-8");
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function listenerError(): Response {
  return new Response(null, { status: 500 });
}

export function raceAbort(
  pending: Promise<Response>,
  signal: AbortSignal,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    pending.then((response) => {
      signal.removeEventListener("abort", onAbort);
      if (signal.aborted) response.body?.cancel(signal.reason).catch(() => {});
      resolve(response);
    }, (error) => {
      signal.removeEventListener("abort", onAbort);
      reject(error);
    });
  });
}

/** Wraps the body so that aborting `signal` errors it with the reason. */
export function abortableBody(
  response: Response,
  signal: AbortSignal,
): Response {
  const source = response.body;
  if (source === null) return response;
  const reader = source.getReader();
  let onAbort = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      onAbort = () => {
        controller.error(signal.reason);
        reader.cancel(signal.reason).catch(() => {});
      };
      signal.addEventListener("abort", onAbort, { once: true });
    },
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (signal.aborted) return;
        if (done) {
          signal.removeEventListener("abort", onAbort);
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        signal.removeEventListener("abort", onAbort);
        if (!signal.aborted) controller.error(error);
      }
    },
    cancel(reason) {
      signal.removeEventListener("abort", onAbort);
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}
