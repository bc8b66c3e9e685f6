/**
 * Base64 with the standard alphabet, as zero-knowledge envelopes use it.
 * Encoding is canonical (`+`, `/` and `=` padding). Decoding is lenient in
 * the two ways other Stash clients differ: ASCII whitespace anywhere and
 * missing padding are accepted. Any other character outside the alphabet is
 * rejected, and so is a padding character in the wrong place.
 *
 * The platform's `Uint8Array.fromBase64` and `Uint8Array.prototype.toBase64`
 * are used where they exist, as in Deno 2.9. Where they are missing, as in
 * Node 20, a fallback in this file does the same work.
 *
 * @example Round trip
 * ```ts
 * import { decodeBase64, encodeBase64 } from "./base64.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodeBase64(new Uint8Array([1, 2, 3, 4])), "AQIDBA==");
 * assert.deepEqual(decodeBase64("AQID\nBA"), new Uint8Array([1, 2, 3, 4]));
 * ```
 *
 * @module
 */

interface NativeBase64Constructor {
  fromBase64?: (
    text: string,
    options: { alphabet: "base64"; lastChunkHandling: "loose" },
  ) => Uint8Array;
}

interface NativeBase64Array {
  toBase64?: () => string;
}

const nativeFromBase64 = (Uint8Array as NativeBase64Constructor).fromBase64;
const nativeToBase64 = (Uint8Array.prototype as NativeBase64Array).toBase64;

const ALPHABET =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Character code to 6-bit value; -1 for characters outside the alphabet. */
const DECODE_TABLE: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) table[ALPHABET.charCodeAt(i)] = i;
  return table;
})();

const PADDING = 0x3d;

/** Whether the platform has `Uint8Array.fromBase64` and `toBase64`. */
export const HAS_NATIVE_BASE64: boolean = nativeFromBase64 !== undefined &&
  nativeToBase64 !== undefined;

/**
 * Encodes bytes as canonical base64: standard alphabet with padding, no line
 * breaks.
 *
 * @param bytes The bytes to encode.
 * @returns The base64 text.
 */
export function encodeBase64(bytes: Uint8Array): string {
  if (nativeToBase64 !== undefined) return nativeToBase64.call(bytes);
  return encodeBase64Fallback(bytes);
}

/**
 * Decodes base64 text leniently: ASCII whitespace (space, tab, LF, CR, FF)
 * is skipped anywhere and padding may be missing. Bits left over after the
 * last full byte are ignored.
 *
 * @param text The base64 text.
 * @returns The decoded bytes.
 * @throws {SyntaxError} A character outside the alphabet, a misplaced `=`,
 * or a final group of a single character.
 */
export function decodeBase64(text: string): Uint8Array {
  if (nativeFromBase64 === undefined) return decodeBase64Fallback(text);
  return nativeFromBase64(text, {
    alphabet: "base64",
    lastChunkHandling: "loose",
  });
}

/**
 * Encodes bytes as canonical base64 without the platform's encoder. Exported
 * so that tests and benchmarks can compare it with the native one.
 *
 * @param bytes The bytes to encode.
 * @returns The base64 text.
 */
export function encodeBase64Fallback(bytes: Uint8Array): string {
  const parts: string[] = [];
  const chunk: number[] = [];
  const fullLength = bytes.length - (bytes.length % 3);
  for (let i = 0; i < fullLength; i += 3) {
    const group = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    chunk.push(
      ALPHABET.charCodeAt(group >> 18),
      ALPHABET.charCodeAt((group >> 12) & 63),
      ALPHABET.charCodeAt((group >> 6) & 63),
      ALPHABET.charCodeAt(group & 63),
    );
    // Flush in slices so String.fromCharCode never gets too many arguments.
    if (chunk.length >= 8192) {
      parts.push(String.fromCharCode(...chunk));
      chunk.length = 0;
    }
  }
  parts.push(String.fromCharCode(...chunk));
  parts.push(encodeTail(bytes, fullLength));
  return parts.join("");
}

function encodeTail(bytes: Uint8Array, start: number): string {
  const remaining = bytes.length - start;
  if (remaining === 0) return "";
  const first = bytes[start]!;
  const second = remaining === 2 ? bytes[start + 1]! : 0;
  const group = (first << 16) | (second << 8);
  const head = ALPHABET[group >> 18]! + ALPHABET[(group >> 12) & 63]!;
  return remaining === 2 ? head + ALPHABET[(group >> 6) & 63]! + "=" : head +
    "==";
}

function isAsciiWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0c ||
    code === 0x0d;
}

/**
 * Decodes base64 text without the platform's decoder, with the same rules
 * and errors as {@link decodeBase64} on a platform that has
 * `Uint8Array.fromBase64`.
 *
 * @param text The base64 text.
 * @returns The decoded bytes.
 * @throws {SyntaxError} On the same inputs as {@link decodeBase64}.
 */
export function decodeBase64Fallback(text: string): Uint8Array {
  const output = new Uint8Array(Math.floor((text.length * 3) / 4) + 3);
  let written = 0;
  let group = 0;
  let groupLength = 0;
  let index = 0;
  for (; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (isAsciiWhitespace(code)) continue;
    if (code === PADDING) break;
    const value = code < 128 ? DECODE_TABLE[code]! : -1;
    if (value < 0) {
      throw new SyntaxError(`Invalid base64 character at index ${index}`);
    }
    group = (group << 6) | value;
    groupLength++;
    if (groupLength === 4) {
      output[written++] = group >> 16;
      output[written++] = (group >> 8) & 0xff;
      output[written++] = group & 0xff;
      group = 0;
      groupLength = 0;
    }
  }
  if (index < text.length) checkPadding(text, index, groupLength);
  written = writeFinalGroup(output, written, group, groupLength);
  return output.slice(0, written);
}

/** Checks that the `=` at `index` completes the final group, then only whitespace follows. */
function checkPadding(text: string, index: number, groupLength: number): void {
  if (groupLength < 2) {
    throw new SyntaxError(`Misplaced base64 padding at index ${index}`);
  }
  let padding = 0;
  for (; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (isAsciiWhitespace(code)) continue;
    if (code === PADDING && padding < 4 - groupLength) {
      padding++;
      continue;
    }
    throw new SyntaxError(`Unexpected base64 character at index ${index}`);
  }
  if (padding !== 4 - groupLength) {
    throw new SyntaxError("Incomplete base64 padding at the end of the input");
  }
}

function writeFinalGroup(
  output: Uint8Array,
  written: number,
  group: number,
  groupLength: number,
): number {
  if (groupLength === 1) {
    throw new SyntaxError("Base64 input ends with a single character group");
  }
  if (groupLength === 2) {
    output[written++] = group >> 4;
  } else if (groupLength === 3) {
    output[written++] = group >> 10;
    output[written++] = (group >> 2) & 0xff;
  }
  return written;
}
