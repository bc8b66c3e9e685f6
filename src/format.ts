/**
 * The value formats that Stash accepts. A format only labels a value: it sets
 * the Content-Type of reads and the editor mode of the web UI, and the server
 * never validates values against it.
 *
 * @module
 */

/** The eight value formats, as a const object for `Format.Json` style use. */
export const Format = {
  Text: "text",
  Json: "json",
  Yaml: "yaml",
  Xml: "xml",
  Toml: "toml",
  Ini: "ini",
  Hcl: "hcl",
  Shell: "shell",
} as const;

/** One of the eight value formats: `text json yaml xml toml ini hcl shell`. */
export type Format = typeof Format[keyof typeof Format];

const FORMATS: ReadonlySet<string> = new Set(Object.values(Format));

/** Reports whether `value` is one of the eight formats (case-sensitive). */
export function isFormat(value: unknown): value is Format {
  return typeof value === "string" && FORMATS.has(value);
}

/**
 * Throws a `TypeError` unless `value` is a format. The server would store an
 * unknown format, `JSON` included, silently as `text`.
 */
export function validateFormat(value: unknown): Format {
  if (isFormat(value)) return value;
  const quoted = typeof value === "string"
    ? JSON.stringify(value)
    : typeof value;
  throw new TypeError(
    `Invalid format ${quoted}: expected one of ${[...FORMATS].join(", ")} ` +
      "(lowercase)",
  );
}
