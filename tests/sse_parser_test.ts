import assert from "node:assert/strict";
import {
  EventStreamError,
  EventStreamParser,
  type ServerSentEvent,
} from "../src/sse/parser.ts";

interface ParserCase {
  name: string;
  input: string | Uint8Array;
  events: ServerSentEvent[];
  lastEventId?: string;
  retry?: number;
}

const encoder = new TextEncoder();

function event(
  data: string,
  fields: Partial<Omit<ServerSentEvent, "data">> = {},
): ServerSentEvent {
  return { type: "message", data, id: "", retry: undefined, ...fields };
}

function bytesOf(input: string | Uint8Array): Uint8Array {
  return typeof input === "string" ? encoder.encode(input) : input;
}

const CHANGE =
  '{"key":"app/config","action":"update","timestamp":"2026-01-03T10:30:00Z"}';

const CASES: ParserCase[] = [
  {
    name: "Stash change event with LF",
    input: `event: change\ndata: ${CHANGE}\n\n`,
    events: [event(CHANGE, { type: "change" })],
  },
  {
    name: "CRLF line ends",
    input: "event: change\r\ndata: a\r\n\r\n",
    events: [event("a", { type: "change" })],
  },
  {
    name: "CR line ends",
    input: "event: change\rdata: a\r\r",
    events: [event("a", { type: "change" })],
  },
  {
    name: "mixed line ends",
    input: "data: a\rdata: b\ndata: c\r\n\n",
    events: [event("a\nb\nc")],
  },
  {
    name: "leading BOM stripped",
    input: new Uint8Array([0xef, 0xbb, 0xbf, ...encoder.encode("data: a\n\n")]),
    events: [event("a")],
  },
  {
    name: "second BOM kept in field name",
    input: new Uint8Array([
      0xef,
      0xbb,
      0xbf,
      0xef,
      0xbb,
      0xbf,
      ...encoder.encode("data: a\n\n"),
    ]),
    events: [],
  },
  {
    name: "comments ignored",
    input: ": keepalive\ndata: a\n:another\n\n: tail\n",
    events: [event("a")],
  },
  {
    name: "multi-line data joined",
    input: "data: one\ndata: two\ndata: three\n\n",
    events: [event("one\ntwo\nthree")],
  },
  {
    name: "field without colon",
    input: "data\n\n",
    events: [event("")],
  },
  {
    name: "two data fields without colon",
    input: "data\ndata\n\n",
    events: [event("\n")],
  },
  {
    name: "only one leading space stripped",
    input: "data:  two spaces \n\n",
    events: [event(" two spaces ")],
  },
  {
    name: "value without space",
    input: "data:tight\n\n",
    events: [event("tight")],
  },
  {
    name: "colon inside value",
    input: "data: a:b: c\n\n",
    events: [event("a:b: c")],
  },
  {
    name: "event type resets after dispatch",
    input: "event: change\ndata: a\n\ndata: b\n\n",
    events: [event("a", { type: "change" }), event("b")],
  },
  {
    name: "unknown event type passed on",
    input: "event: other\ndata: x\n\n",
    events: [event("x", { type: "other" })],
  },
  {
    name: "unknown and miscased fields ignored",
    input: "foo: bar\nData: no\nEVENT: no\ndata: yes\n\n",
    events: [event("yes")],
  },
  {
    name: "valid retry",
    input: "retry: 5000\ndata: a\n\n",
    events: [event("a", { retry: 5000 })],
    retry: 5000,
  },
  {
    name: "retry without dispatch",
    input: "retry: 250\n\n",
    events: [],
    retry: 250,
  },
  {
    name: "invalid retry values ignored",
    input: "retry: 100\nretry: 5s\nretry: -1\nretry: 1.5\nretry:\nretry: ٣\n" +
      "data: a\n\n",
    events: [event("a", { retry: 100 })],
    retry: 100,
  },
  {
    name: "id persists across events",
    input: "id: 7\ndata: a\n\ndata: b\n\n",
    events: [event("a", { id: "7" }), event("b", { id: "7" })],
    lastEventId: "7",
  },
  {
    name: "id with NUL ignored",
    input: "id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n",
    events: [event("a", { id: "1" }), event("b", { id: "1" })],
    lastEventId: "1",
  },
  {
    name: "empty id resets",
    input: "id: 1\ndata: a\n\nid\ndata: b\n\n",
    events: [event("a", { id: "1" }), event("b")],
    lastEventId: "",
  },
  {
    name: "id without data sets last id",
    input: "id: 9\n\n",
    events: [],
    lastEventId: "9",
  },
  {
    name: "id without blank line pending",
    input: "data: a\n\nid: 3\n",
    events: [event("a")],
    lastEventId: "",
  },
  {
    name: "empty data buffer not dispatched",
    input: "event: change\n\n\n\n",
    events: [],
  },
  {
    name: "trailing event not dispatched",
    input: "data: a\n\ndata: b\n",
    events: [event("a")],
  },
  {
    name: "trailing line without line end",
    input: "data: a\n\ndata: b",
    events: [event("a")],
  },
  {
    name: "multibyte characters",
    input: "data: ключ ✓ 😀\n\n",
    events: [event("ключ ✓ 😀")],
  },
  {
    name: "invalid UTF-8 replaced",
    input: new Uint8Array([...encoder.encode("data: "), 0xff, 0x0a, 0x0a]),
    events: [event("\uFFFD")],
  },
];

function parseChunks(chunks: Uint8Array[]): {
  events: ServerSentEvent[];
  parser: EventStreamParser;
} {
  const parser = new EventStreamParser();
  const events = chunks.flatMap((chunk) => parser.push(chunk));
  parser.end();
  return { events, parser };
}

function checkCase(
  testCase: ParserCase,
  chunks: Uint8Array[],
  label: string,
): void {
  const { events, parser } = parseChunks(chunks);
  assert.deepEqual(events, testCase.events, `${testCase.name}: ${label}`);
  assert.equal(
    parser.lastEventId,
    testCase.lastEventId ?? events.at(-1)?.id ?? "",
    `${testCase.name}: lastEventId, ${label}`,
  );
  assert.equal(parser.retry, testCase.retry, `${testCase.name}: retry`);
}

Deno.test("EventStreamParser cases", async (t) => {
  assert.ok(CASES.length >= 25);
  for (const testCase of CASES) {
    await t.step(testCase.name, () => {
      const bytes = bytesOf(testCase.input);
      checkCase(testCase, [bytes], "one chunk");
      for (let split = 0; split <= bytes.length; split++) {
        const chunks = [bytes.subarray(0, split), bytes.subarray(split)];
        checkCase(testCase, chunks, `split at byte ${split}`);
      }
      const single = Array.from(bytes, (byte) => new Uint8Array([byte]));
      checkCase(testCase, single, "one byte per chunk");
    });
  }
});

Deno.test("EventStreamParser sample stream", async (t) => {
  const sample = "\uFEFF: hello\r\nevent: change\r\ndata: ключ ✓\r\n\r" +
    "id: 1\nretry: 3000\ndata: x\r\rdata: 😀\n\n";
  const expected = [
    event("ключ ✓", { type: "change" }),
    event("x", { id: "1", retry: 3000 }),
    event("😀", { id: "1", retry: 3000 }),
  ];
  const bytes = encoder.encode(sample);

  await t.step("every two-way split", () => {
    for (let split = 0; split <= bytes.length; split++) {
      const chunks = [bytes.subarray(0, split), bytes.subarray(split)];
      assert.deepEqual(parseChunks(chunks).events, expected, `split ${split}`);
    }
  });

  await t.step("every three-way split", () => {
    for (let first = 0; first <= bytes.length; first++) {
      for (let second = first; second <= bytes.length; second++) {
        const chunks = [
          bytes.subarray(0, first),
          bytes.subarray(first, second),
          bytes.subarray(second),
        ];
        const { events } = parseChunks(chunks);
        assert.deepEqual(events, expected, `splits ${first}, ${second}`);
      }
    }
  });
});

Deno.test("EventStreamParser line ends across chunks", async (t) => {
  await t.step("CR at chunk end then LF is one line end", () => {
    const parser = new EventStreamParser();
    assert.deepEqual(parser.push(encoder.encode("data: a\r")), []);
    const events = parser.push(encoder.encode("\ndata: b\r\n\r\n"));
    assert.deepEqual(events, [event("a\nb")]);
  });

  await t.step("CR, empty chunk, then LF is one line end", () => {
    const parser = new EventStreamParser();
    parser.push(encoder.encode("data: a\r"));
    parser.push(new Uint8Array(0));
    const events = parser.push(encoder.encode("\ndata: b\n\n"));
    assert.deepEqual(events, [event("a\nb")]);
  });

  await t.step("CR at chunk end then CR is a blank line", () => {
    const parser = new EventStreamParser();
    parser.push(encoder.encode("data: a\r"));
    assert.deepEqual(parser.push(encoder.encode("\r")), [event("a")]);
  });

  await t.step("CR before a split character is a line end", () => {
    const parser = new EventStreamParser();
    const bytes = encoder.encode("data: a\r✓: x\n\n");
    parser.push(bytes.subarray(0, 9));
    assert.deepEqual(parser.push(bytes.subarray(9)), [event("a")]);
  });
});

Deno.test("EventStreamParser end of stream", async (t) => {
  await t.step("discards the incomplete event", () => {
    const parser = new EventStreamParser();
    parser.push(encoder.encode("data: a\n"));
    parser.end();
    assert.deepEqual(parser.push(encoder.encode("data: b\n\n")), [event("b")]);
  });

  await t.step("accepts a cut multibyte character", () => {
    const parser = new EventStreamParser();
    parser.push(encoder.encode("data: ✓").subarray(0, 7));
    parser.end();
    assert.deepEqual(parser.push(encoder.encode("data: c\n\n")), [event("c")]);
  });
});

Deno.test("EventStreamParser initial last event id", () => {
  const parser = new EventStreamParser({ lastEventId: "41" });
  assert.equal(parser.lastEventId, "41");
  const events = parser.push(encoder.encode("data: a\n\n"));
  assert.deepEqual(events, [event("a", { id: "41" })]);
  assert.equal(parser.lastEventId, "41");
});

Deno.test("EventStreamParser size limit", async (t) => {
  await t.step("endless line raises EventStreamError", () => {
    const parser = new EventStreamParser({ maxEventSize: 16 });
    parser.push(encoder.encode("data: 0123456789"));
    assert.throws(
      () => parser.push(encoder.encode("x")),
      (error: unknown) => {
        assert.ok(error instanceof EventStreamError);
        assert.equal(error.limit, 16);
        assert.match(error.message, /exceeds the limit of 16 characters/);
        return true;
      },
    );
  });

  await t.step("endless line in small chunks", () => {
    const parser = new EventStreamParser({ maxEventSize: 64 });
    let thrown: unknown;
    let pushes = 0;
    for (; pushes < 100 && thrown === undefined; pushes++) {
      try {
        parser.push(encoder.encode("abcd"));
      } catch (error) {
        thrown = error;
      }
    }
    assert.ok(thrown instanceof EventStreamError);
    assert.equal(pushes, 17);
  });

  await t.step("line at the limit accepted", () => {
    const parser = new EventStreamParser({ maxEventSize: 16 });
    const events = parser.push(encoder.encode("data: 0123456789\n\n"));
    assert.deepEqual(events, [event("0123456789")]);
  });

  await t.step("event data over the limit", () => {
    const parser = new EventStreamParser({ maxEventSize: 16 });
    parser.push(encoder.encode("data: 01234567\n"));
    assert.throws(
      () => parser.push(encoder.encode("data: 01234567\n")),
      EventStreamError,
    );
  });

  await t.step("invalid limit raises RangeError", () => {
    assert.throws(() => new EventStreamParser({ maxEventSize: 0 }), RangeError);
    assert.throws(
      () => new EventStreamParser({ maxEventSize: 1.5 }),
      RangeError,
    );
  });
});

Deno.test("EventStreamParser feed before an error", () => {
  const parser = new EventStreamParser({ maxEventSize: 16 });
  const events: ServerSentEvent[] = [];
  const chunk = encoder.encode("data: a\n\ndata: " + "x".repeat(20));
  assert.throws(
    () => parser.feed(chunk, (event) => events.push(event)),
    EventStreamError,
  );
  assert.deepEqual(events, [event("a")]);
});
