/**
 * An incremental parser for the `text/event-stream` format of the WHATWG
 * HTML standard (server-sent events). Bytes go in as chunks split at any
 * position, and complete events come out.
 *
 * @module
 */

import { StashError, type StashErrorOptions } from "../errors.ts";

/** One dispatched server-sent event. */
export interface ServerSentEvent {
  /** Event type from the `event` field, or `message` when there was none. */
  type: string;
  /** The `data` lines of the event joined with `\n`. */
  data: string;
  /**
   * The last event id in effect when the event was dispatched. It persists
   * across events until an `id` field changes it, and is empty before that.
   */
  id: string;
  /**
   * The reconnection time in milliseconds from the latest valid `retry`
   * field of the stream, or undefined when the stream has sent none.
   */
  retry: number | undefined;
}

/** Options of {@link EventStreamParser}. */
export interface EventStreamParserOptions {
  /**
   * Maximum length, in UTF-16 code units, of one line and of the data of
   * one event. A longer line or event raises {@link EventStreamError}, so an
   * endless line from a broken server or proxy cannot fill the memory.
   *
   * @default {1048576}
   */
  maxEventSize?: number;
  /**
   * Initial last event id, for a parser that continues a stream after a
   * reconnect, so events without an `id` field keep the previous id.
   *
   * @default {""}
   */
  lastEventId?: string;
}

/** Options of {@link EventStreamError}. */
export interface EventStreamErrorOptions extends StashErrorOptions {
  /** The size limit, in UTF-16 code units, that the stream exceeded. */
  limit: number;
}

/** An event stream broke a limit of the parser, such as the event size. */
export class EventStreamError extends StashError {
  /** The size limit, in UTF-16 code units, that the stream exceeded. */
  readonly limit: number;

  /** Creates an error for an event stream over a parser limit. */
  constructor(message: string, options: EventStreamErrorOptions) {
    super(message, options);
    this.name = "EventStreamError";
    this.limit = options.limit;
  }
}

/** Default of {@link EventStreamParserOptions.maxEventSize}: 1 MiB. */
export const DEFAULT_MAX_EVENT_SIZE = 1024 * 1024;

const LINE_END_REGEXP = /\r\n|\r|\n/g;
const DIGITS_REGEXP = /^[0-9]+$/;

/**
 * Parses a `text/event-stream` body incrementally, keeping its state across
 * chunks. It follows the WHATWG parsing rules:
 *
 * - UTF-8 decoding with replacement characters, a character may be split
 *   across chunks, and one leading byte order mark is skipped;
 * - lines end in LF, CR or CRLF, and a CR at the end of one chunk followed
 *   by an LF at the start of the next is one line end;
 * - lines starting with `:` are comments, a line without a colon is a field
 *   with an empty value, and one space after the colon is stripped;
 * - `data` lines are joined with `\n`, and an event with no data is not
 *   dispatched;
 * - `id` is ignored when it contains U+0000, `retry` is ignored unless it is
 *   all ASCII digits, and unknown fields are ignored;
 * - an event not ended by a blank line when the stream ends is discarded.
 *
 * After it throws {@link EventStreamError}, the parser must not be used
 * again.
 *
 * @example Parse a stream split inside a line
 * ```ts
 * import assert from "node:assert/strict";
 * import { EventStreamParser } from "./parser.ts";
 *
 * const parser = new EventStreamParser();
 * const bytes = new TextEncoder().encode("event: change\ndata: {}\n\n");
 * assert.deepEqual(parser.push(bytes.subarray(0, 9)), []);
 * const events = parser.push(bytes.subarray(9));
 * assert.equal(events.length, 1);
 * assert.equal(events[0]?.type, "change");
 * assert.equal(events[0]?.data, "{}");
 * ```
 */
export class EventStreamParser {
  readonly #maxEventSize: number;
  readonly #decoder = new TextDecoder("utf-8");
  #line = "";
  #skipLeadingLF = false;
  #data = "";
  #hasData = false;
  #eventType = "";
  #idBuffer = "";
  #lastEventId = "";
  #retry: number | undefined;

  /** Creates a parser for one stream; use a new parser for each connection. */
  constructor(options: EventStreamParserOptions = {}) {
    const maxEventSize = options.maxEventSize ?? DEFAULT_MAX_EVENT_SIZE;
    if (!Number.isSafeInteger(maxEventSize) || maxEventSize < 1) {
      throw new RangeError(
        `Invalid maxEventSize ${maxEventSize}: expected a positive integer`,
      );
    }
    this.#maxEventSize = maxEventSize;
    this.#idBuffer = options.lastEventId ?? "";
    this.#lastEventId = this.#idBuffer;
  }

  /** The last event id of the stream, set when an event is dispatched. */
  get lastEventId(): string {
    return this.#lastEventId;
  }

  /** The latest valid `retry` value in milliseconds, if the stream sent one. */
  get retry(): number | undefined {
    return this.#retry;
  }

  /**
   * Feeds one chunk of bytes and returns the events it completed, in order.
   * When it throws, the events completed earlier in the same chunk are lost;
   * {@link EventStreamParser.feed} hands them out before the error.
   *
   * @throws {EventStreamError} when a line or an event exceeds the limit.
   */
  push(chunk: Uint8Array): ServerSentEvent[] {
    const events: ServerSentEvent[] = [];
    this.feed(chunk, (event) => events.push(event));
    return events;
  }

  /**
   * Feeds one chunk of bytes and calls `onEvent` for each event it
   * completes, in order.
   *
   * @throws {EventStreamError} when a line or an event exceeds the limit.
   */
  feed(chunk: Uint8Array, onEvent: (event: ServerSentEvent) => void): void {
    const text = this.#decoder.decode(chunk, { stream: true });
    this.#feedText(text, onEvent);
  }

  /**
   * Ends the stream: decodes any incomplete character and discards the
   * incomplete line and event, as the standard requires at end of stream.
   */
  end(): void {
    this.#decoder.decode();
    this.#line = "";
    this.#skipLeadingLF = false;
    this.#resetEvent();
  }

  #feedText(
    text: string,
    onEvent: (event: ServerSentEvent) => void,
  ): void {
    let position = 0;
    if (this.#skipLeadingLF && text.length > 0) {
      this.#skipLeadingLF = false;
      if (text.startsWith("\n")) position = 1;
    }
    LINE_END_REGEXP.lastIndex = position;
    let match: RegExpExecArray | null;
    while ((match = LINE_END_REGEXP.exec(text)) !== null) {
      const line = this.#line + text.slice(position, match.index);
      this.#line = "";
      this.#checkLineLength(line.length);
      this.#processLine(line, onEvent);
      position = match.index + match[0].length;
      // A CR that ends the chunk may be the first half of a CRLF.
      if (match[0] === "\r" && position === text.length) {
        this.#skipLeadingLF = true;
      }
    }
    this.#line += text.slice(position);
    this.#checkLineLength(this.#line.length);
  }

  #checkLineLength(length: number): void {
    if (length <= this.#maxEventSize) return;
    throw new EventStreamError(
      `Event stream line exceeds the limit of ${this.#maxEventSize} ` +
        "characters: the server or a proxy sent a line that is too long " +
        "or never ends; raise the maxEventSize subscription option if " +
        "events are really this large",
      { limit: this.#maxEventSize },
    );
  }

  #processLine(
    line: string,
    onEvent: (event: ServerSentEvent) => void,
  ): void {
    if (line === "") {
      this.#dispatch(onEvent);
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    if (colon === -1) {
      this.#processField(line, "");
      return;
    }
    let value = line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    this.#processField(line.slice(0, colon), value);
  }

  #processField(field: string, value: string): void {
    switch (field) {
      case "event":
        this.#eventType = value;
        break;
      case "data":
        this.#appendData(value);
        break;
      case "id":
        if (!value.includes("\0")) this.#idBuffer = value;
        break;
      case "retry":
        if (DIGITS_REGEXP.test(value)) this.#retry = Number(value);
        break;
    }
  }

  #appendData(value: string): void {
    this.#data = this.#hasData ? `${this.#data}\n${value}` : value;
    this.#hasData = true;
    if (this.#data.length <= this.#maxEventSize) return;
    throw new EventStreamError(
      `Event stream event data exceeds the limit of ${this.#maxEventSize} ` +
        "characters; raise maxEventSize if events are really this large",
      { limit: this.#maxEventSize },
    );
  }

  #dispatch(onEvent: (event: ServerSentEvent) => void): void {
    // The standard sets the last event id even when no event is dispatched.
    this.#lastEventId = this.#idBuffer;
    if (this.#hasData) {
      const event: ServerSentEvent = {
        type: this.#eventType === "" ? "message" : this.#eventType,
        data: this.#data,
        id: this.#lastEventId,
        retry: this.#retry,
      };
      this.#resetEvent();
      onEvent(event);
      return;
    }
    this.#resetEvent();
  }

  #resetEvent(): void {
    this.#data = "";
    this.#hasData = false;
    this.#eventType = "";
  }
}
