/**
 * SSE subscriptions of the in-process Stash server: subscription paths,
 * per-event permission checks, deferred headers and bounded buffers.
 *
 * @module
 */

import { encodeGoJsonLine, normalizeKey, trimGoSpace } from "./store.ts";

/** Key set that one subscription covers. */
export type SubscriptionTarget =
  | { kind: "all" }
  | { kind: "prefix"; prefix: string }
  | { kind: "exact"; key: string };

/** The change a write makes, as sent in an event's `action`. */
export type ChangeAction = "create" | "update" | "delete";

/** The data of one `change` event. */
export interface ChangeEvent {
  /** The normalised key. */
  key: string;
  /** Kind of change made to the key. */
  action: ChangeAction;
  /** RFC 3339 in UTC, whole seconds. */
  timestamp: string;
}

/**
 * Parses the decoded path after `/kv/subscribe/`; returns undefined for an
 * empty or whitespace-only path.
 */
export function parseSubscriptionPath(
  decoded: string,
): SubscriptionTarget | undefined {
  const trimmed = trimGoSpace(decoded);
  if (trimmed === "") return undefined;
  if (trimmed === "*") return { kind: "all" };
  if (trimmed.endsWith("/*") || trimmed.endsWith("/")) {
    const base = normalizeKey(trimmed.replace(/\*$/, ""));
    return base === ""
      ? { kind: "all" }
      : { kind: "prefix", prefix: `${base}/` };
  }
  const key = normalizeKey(trimmed);
  return key === "" ? undefined : { kind: "exact", key };
}

function targetMatches(target: SubscriptionTarget, key: string): boolean {
  switch (target.kind) {
    case "all":
      return true;
    case "prefix":
      return key.startsWith(target.prefix);
    case "exact":
      return key === target.key;
  }
}

/** Formats one event exactly as the server writes it. */
export function formatChangeEvent(event: ChangeEvent): string {
  const data = encodeGoJsonLine({
    key: event.key,
    action: event.action,
    timestamp: event.timestamp,
  });
  return `event: change\ndata: ${data}\n\n`;
}

/** A fault applied to one subscription's stream. */
export type StreamFault =
  | { type: "sseClose"; afterEvents: number }
  | { type: "sseCut"; afterEvents: number }
  | { type: "sseStall"; afterEvents: number };

/** Settings of one subscription. */
export interface SubscribeRequest {
  /** The keys the subscription covers. */
  target: SubscriptionTarget;
  /** Checks a key against the subscriber's current credentials. */
  canRead: (key: string) => boolean;
  /** Ends the stream when aborted (client abort, listener or server close). */
  signal: AbortSignal;
  /** Headers of the 200 response, besides Content-Type. */
  headers: Record<string, string>;
  /** Called once when the stream ends, to free the concurrency slot. */
  onEnd: () => void;
  /** A stream fault to apply. */
  fault?: StreamFault | undefined;
}

/** Settings shared by every subscription of a hub. */
export interface SseHubOptions {
  /** Send status and headers at once instead of with the first event. */
  flushOnSubscribe: boolean;
  /** Unread events one subscriber may have queued. */
  bufferSize: number;
  /** Make publishing wait while a subscriber's buffer is full. */
  blockingPublish: boolean;
}

const encoder = new TextEncoder();

/** One open stream. */
class Subscriber {
  readonly request: SubscribeRequest;
  readonly response: Promise<Response>;
  #onEnded: (subscriber: Subscriber) => void;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #stream: ReadableStream<Uint8Array>;
  #resolve!: (response: Response) => void;
  #headersSent = false;
  #ended = false;
  #events = 0;
  #drained: Array<() => void> = [];
  #onAbort = () => this.end();

  constructor(
    request: SubscribeRequest,
    bufferSize: number,
    onEnded: (subscriber: Subscriber) => void,
  ) {
    this.#onEnded = onEnded;
    this.request = request;
    this.response = new Promise((resolve) => this.#resolve = resolve);
    this.#stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => this.#releaseWaiters(),
      cancel: () => this.end(),
    }, new CountQueuingStrategy({ highWaterMark: bufferSize }));
    request.signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Sends status and headers now. */
  flush(): void {
    if (this.#headersSent) return;
    this.#headersSent = true;
    const headers = {
      ...this.request.headers,
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-cache",
    };
    this.#resolve(new Response(this.#stream, { status: 200, headers }));
  }

  /** Delivers `event` when it matches and is readable, applying any fault. */
  deliver(event: ChangeEvent, blocking: boolean): Promise<void> | undefined {
    if (this.#ended || !targetMatches(this.request.target, event.key)) return;
    if (!this.request.canRead(event.key)) return;
    const text = formatChangeEvent(event);
    const fault = this.request.fault;
    if (fault && this.#events >= fault.afterEvents) {
      return this.#applyFault(fault, text);
    }
    this.#events++;
    const pending = this.write(encoder.encode(text), blocking);
    if (fault?.type === "sseClose" && this.#events >= fault.afterEvents) {
      this.end();
    }
    return pending;
  }

  /**
   * Queues bytes. A full buffer either drops the subscriber (its stream
   * ends cleanly) or, when `blocking`, returns a promise that settles once
   * the reader makes room.
   */
  write(bytes: Uint8Array, blocking: boolean): Promise<void> | undefined {
    if (this.#ended) return;
    const room = this.#controller.desiredSize ?? 0;
    if (room <= 0 && !blocking) {
      this.end();
      return;
    }
    this.#controller.enqueue(bytes);
    this.flush();
    if (!blocking || (this.#controller.desiredSize ?? 0) > 0) return;
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  /** Ends the stream cleanly; safe to call more than once. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.request.signal.removeEventListener("abort", this.#onAbort);
    try {
      this.#controller.close();
    } catch {
      // Already closed or cancelled by the reader.
    }
    this.flush();
    this.#releaseWaiters();
    this.#onEnded(this);
    this.request.onEnd();
  }

  #applyFault(fault: StreamFault, text: string): Promise<void> | undefined {
    switch (fault.type) {
      case "sseClose":
        this.end();
        return;
      case "sseStall":
        return;
      case "sseCut": {
        const half = text.slice(0, Math.max(1, Math.floor(text.length / 2)));
        this.write(encoder.encode(half), true);
        this.end();
        return;
      }
    }
  }

  #releaseWaiters(): void {
    const waiters = this.#drained;
    this.#drained = [];
    for (const resolve of waiters) resolve();
  }
}

/** The open streams of one server. */
export class SseHub {
  #options: SseHubOptions;
  #subscribers = new Set<Subscriber>();

  constructor(options: SseHubOptions) {
    this.#options = options;
  }

  /** The number of open streams. */
  get count(): number {
    return this.#subscribers.size;
  }

  /**
   * Opens a stream. The returned promise settles with the 200 response when
   * the first event is written, at once with `flushOnSubscribe`, or when the
   * stream ends before any event (then the body is empty).
   */
  subscribe(request: SubscribeRequest): Promise<Response> {
    const subscriber = new Subscriber(
      request,
      this.#options.bufferSize,
      (ended) => this.#subscribers.delete(ended),
    );
    this.#subscribers.add(subscriber);
    const closesAtOnce = request.fault?.type === "sseClose" &&
      request.fault.afterEvents <= 0;
    if (request.signal.aborted || closesAtOnce) subscriber.end();
    else if (this.#options.flushOnSubscribe) subscriber.flush();
    return subscriber.response;
  }

  /**
   * Delivers `event` to every matching subscriber in turn. The promise
   * settles at once unless `blockingPublish` is on and a buffer is full.
   */
  async publish(event: ChangeEvent): Promise<void> {
    for (const subscriber of [...this.#subscribers]) {
      await subscriber.deliver(event, this.#options.blockingPublish);
    }
  }

  /**
   * Writes `chunk` as is to every open stream, with no matching, permission
   * check or fault.
   */
  publishRaw(chunk: string | Uint8Array): void {
    const bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk;
    for (const subscriber of [...this.#subscribers]) {
      subscriber.write(bytes, false);
    }
  }

  /** Ends every stream, or those matching `predicate`. */
  dropAll(predicate?: (request: SubscribeRequest) => boolean): void {
    for (const subscriber of [...this.#subscribers]) {
      if (!predicate || predicate(subscriber.request)) subscriber.end();
    }
  }
}
