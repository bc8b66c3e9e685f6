/**
 * Sorts the response to a subscription request into an event stream, a
 * failure worth retrying, or a permanent failure.
 *
 * @module
 */

import {
  errorFromResponse,
  RateLimitError,
  type RequestContext,
  UnsupportedError,
} from "../errors.ts";

/** The outcome of one subscription request. */
export type ResponseOutcome =
  | { kind: "stream"; body: ReadableStream<Uint8Array> | null }
  | { kind: "retry"; error: Error; minDelay: number }
  | { kind: "fail"; error: Error };

/** Bytes of an error body kept for the error message. */
const MAX_ERROR_BODY = 4096;
/** Bytes of a non-event-stream 200 body read to spot the `pong` reply. */
const MAX_PONG_BODY = 16;
/** Minimum wait after a 429 without `Retry-After`, in milliseconds. */
const MIN_RATE_LIMIT_DELAY = 1000;

/**
 * Classifies a response. It consumes or cancels the body of every response
 * except an event stream, reading at most a few kilobytes.
 */
export async function classifyResponse(
  response: Response,
  context: RequestContext,
  signal: AbortSignal,
): Promise<ResponseOutcome> {
  if (response.ok) {
    if (isEventStream(response.headers)) {
      return { kind: "stream", body: response.body };
    }
    return {
      kind: "fail",
      error: await notEventStreamError(response, context, signal),
    };
  }
  const body = await readPrefix(response.body, MAX_ERROR_BODY, signal);
  const snapshot = { status: response.status, headers: response.headers, body };
  const error = errorFromResponse(snapshot, { method: "GET", ...context });
  if (response.status === 404) {
    return {
      kind: "fail",
      error: unsupportedError(error.message, context, error),
    };
  }
  if (response.status === 408 || response.status >= 500) {
    return { kind: "retry", error, minDelay: 0 };
  }
  if (error instanceof RateLimitError) {
    const minDelay = error.retryAfter ?? MIN_RATE_LIMIT_DELAY;
    return { kind: "retry", error, minDelay };
  }
  return { kind: "fail", error };
}

function isEventStream(headers: Headers): boolean {
  const contentType = headers.get("content-type") ?? "";
  const mimeType = contentType.split(";", 1)[0]?.trim().toLowerCase();
  return mimeType === "text/event-stream";
}

async function notEventStreamError(
  response: Response,
  context: RequestContext,
  signal: AbortSignal,
): Promise<UnsupportedError> {
  const body = await readPrefix(response.body, MAX_PONG_BODY, signal);
  const path = context.path ?? "";
  if (new TextDecoder().decode(body).trim() === "pong") {
    return new UnsupportedError(
      `GET ${path} returned the health-check reply "pong" instead of an ` +
        "event stream: the server answers every path ending in /ping that " +
        "way, so subscribe to the key's parent prefix instead",
      { method: "GET", ...context },
    );
  }
  const contentType = response.headers.get("content-type") ?? "no content type";
  return unsupportedError(
    `GET ${path} returned ${response.status} with ${contentType} instead of ` +
      "text/event-stream",
    context,
  );
}

function unsupportedError(
  detail: string,
  context: RequestContext,
  cause?: Error,
): UnsupportedError {
  return new UnsupportedError(
    `Subscriptions are not supported by this server (${detail}); they need ` +
      "a Stash release newer than v0.13.0, so upgrade the server or check " +
      "the base URL",
    { method: "GET", ...context, ...(cause === undefined ? {} : { cause }) },
  );
}

/**
 * Reads at most `limit` bytes of a body, then cancels the rest. A read that
 * fails or is aborted returns the bytes read so far.
 */
export async function readPrefix(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
  signal: AbortSignal,
): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const cancel = (): void => {
    reader.cancel().catch(() => {});
  };
  signal.addEventListener("abort", cancel, { once: true });
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit && !signal.aborted) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } catch {
    // A broken error body still leaves the status to report.
  } finally {
    signal.removeEventListener("abort", cancel);
    await reader.cancel().catch(() => {});
  }
  return concat(chunks, limit);
}

function concat(chunks: Uint8Array[], limit: number): Uint8Array {
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const result = new Uint8Array(Math.min(total, limit));
  let offset = 0;
  for (const chunk of chunks) {
    if (offset >= result.length) break;
    const part = chunk.subarray(0, result.length - offset);
    result.set(part, offset);
    offset += part.length;
  }
  return result;
}
