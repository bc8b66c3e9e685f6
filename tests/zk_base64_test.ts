import assert from "node:assert/strict";
import {
  decodeBase64,
  decodeBase64Fallback,
  encodeBase64,
  encodeBase64Fallback,
  HAS_NATIVE_BASE64,
} from "../src/zk/base64.ts";

const DECODE_ACCEPTED: [string, number[]][] = [
  ["", []],
  ["AQIDBA==", [1, 2, 3, 4]],
  ["AQIDBA", [1, 2, 3, 4]],
  ["AQIDBAU=", [1, 2, 3, 4, 5]],
  ["AQIDBAU", [1, 2, 3, 4, 5]],
  ["AQID", [1, 2, 3]],
  [" A Q I D B A = = ", [1, 2, 3, 4]],
  ["AQID\nBA==", [1, 2, 3, 4]],
  ["AQID\r\nBA==\r\n", [1, 2, 3, 4]],
  ["\tAQ\fID\tBA", [1, 2, 3, 4]],
  ["AQ= =", [1]],
  ["AR==", [1]],
  ["AQJ=", [1, 2]],
  ["+/+/", [0xfb, 0xff, 0xbf]],
];

const DECODE_REJECTED: [string, string][] = [
  ["A", "single character group"],
  ["AQIDB", "single character group after full groups"],
  ["=", "padding only"],
  ["AQID=", "padding after a full group"],
  ["AQ=", "incomplete padding"],
  ["AQIDBA=", "incomplete padding after full groups"],
  ["AQIDBA===", "too much padding"],
  ["AQ==AQ==", "data after padding"],
  ["AQ==x", "character after padding"],
  ["AB=C", "padding inside a group"],
  ["AQ-_", "URL-safe alphabet"],
  ["AQID*!", "punctuation"],
  ["AQ\u00a0ID", "non-breaking space"],
  ["AQ\vID", "vertical tab"],
  ["AQ\u2028ID", "line separator"],
  ["AQIDé", "non-ASCII letter"],
  ["AQ\0ID", "NUL"],
];

function decoders(): [string, (text: string) => Uint8Array][] {
  return [["decodeBase64", decodeBase64], [
    "decodeBase64Fallback",
    decodeBase64Fallback,
  ]];
}

Deno.test("decodeBase64 lenient inputs", async (t) => {
  for (const [name, decode] of decoders()) {
    for (const [input, expected] of DECODE_ACCEPTED) {
      await t.step(`${name} accepts ${JSON.stringify(input)}`, () => {
        assert.deepEqual([...decode(input)], expected);
      });
    }
  }
});

Deno.test("decodeBase64 rejected inputs", async (t) => {
  for (const [name, decode] of decoders()) {
    for (const [input, why] of DECODE_REJECTED) {
      await t.step(`${name} rejects ${why}`, () => {
        assert.throws(() => decode(input), SyntaxError);
      });
    }
  }
});

Deno.test("encodeBase64 canonical output", async (t) => {
  const cases: [number[], string][] = [
    [[], ""],
    [[0], "AA=="],
    [[0, 0], "AAA="],
    [[0, 0, 0], "AAAA"],
    [[0xfb, 0xff, 0xbf], "+/+/"],
    [[1, 2, 3, 4], "AQIDBA=="],
  ];
  for (const [bytes, expected] of cases) {
    await t.step(`encodes ${JSON.stringify(bytes)}`, () => {
      assert.equal(encodeBase64(new Uint8Array(bytes)), expected);
      assert.equal(encodeBase64Fallback(new Uint8Array(bytes)), expected);
    });
  }
});

Deno.test("base64 fallback matches native", async (t) => {
  if (!HAS_NATIVE_BASE64) {
    // deno-lint-ignore no-console
    console.log("skipped: this runtime has no native Uint8Array base64");
    return;
  }
  await t.step("encoding of random lengths 0..300 and 65,536", () => {
    const lengths = [...Array(301).keys(), 65_536];
    for (const length of lengths) {
      const bytes = crypto.getRandomValues(new Uint8Array(length));
      assert.equal(encodeBase64Fallback(bytes), bytes.toBase64(), `${length}`);
    }
  });
  await t.step("decoding agrees on 2,000 mutated strings", () => {
    const alphabet = "AQz+/= \n\t\r\f-_*é";
    for (let i = 0; i < 2000; i++) {
      const length = i % 13;
      let text = "";
      for (let j = 0; j < length; j++) {
        text += alphabet[(i * 7 + j * 13 + (i >> 3)) % alphabet.length];
      }
      assert.deepEqual(
        outcome(decodeBase64Fallback, text),
        outcome(
          (input) =>
            Uint8Array.fromBase64(input, { lastChunkHandling: "loose" }),
          text,
        ),
        JSON.stringify(text),
      );
    }
  });
  await t.step("decoding round-trips random bytes", () => {
    for (let length = 0; length < 200; length++) {
      const bytes = crypto.getRandomValues(new Uint8Array(length));
      const text = bytes.toBase64();
      assert.deepEqual(decodeBase64Fallback(text), bytes);
      assert.deepEqual(decodeBase64Fallback(text.replace(/=+$/, "")), bytes);
    }
  });
});

function outcome(
  decode: (text: string) => Uint8Array,
  text: string,
): string {
  try {
    return JSON.stringify([...decode(text)]);
  } catch (error) {
    return error instanceof Error ? error.name : "unknown";
  }
}
