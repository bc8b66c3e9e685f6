/**
 * Pure helpers for the npm build: package.json generation from deno.json,
 * the exports drift check and import specifier mapping. They touch no files,
 * so tests/build_npm_test.ts can run them without permissions.
 *
 * @module
 */

/** The parts of deno.json that the npm build reads. */
export interface DenoConfig {
  /** Package name on JSR, such as `@stash/client`; the npm build ignores it. */
  name?: string;
  /** Package version, copied to package.json. */
  version?: string;
  /** SPDX license expression, copied to package.json. */
  license?: string;
  /** A single entry point or a map from subpath (`"."`) to source file. */
  exports?: string | Record<string, string>;
  /** The import map: bare specifier to `npm:`, `jsr:` or URL target. */
  imports?: Record<string, string>;
  /** TypeScript compiler options passed to the npm build. */
  compilerOptions?: Record<string, unknown>;
}

/** A parsed `npm:` specifier. */
export interface NpmSpecifier {
  /** Package name, with its scope if any. */
  name: string;
  /** Version range after `@`, or `"*"` when the specifier has none. */
  range: string;
  /** Path inside the package after the version, such as `/sub`, or `""`. */
  subpath: string;
}

/** One `exports` entry of package.json, with `types` before `default`. */
export interface PackageExportTarget {
  /** Declaration file, such as `./mod.d.ts`. */
  types: string;
  /** ES module, such as `./mod.js`. */
  default: string;
}

/** The fields of the generated package.json. */
export interface PackageJson {
  /** Package name on npm. */
  name: string;
  /** Version, equal to deno.json's. */
  version: string;
  /** One-line summary shown by the registry. */
  description: string;
  /** SPDX license expression, equal to deno.json's. */
  license: string;
  /** Always `"module"`: the package ships ES modules only. */
  type: "module";
  /** Subpath exports generated from deno.json's `exports`. */
  exports: Record<string, PackageExportTarget>;
  /** Declaration file of the `"."` export, for tools that ignore `exports`. */
  types: string;
  /** Node.js versions the package supports. */
  engines: { node: string };
  /** Runtime dependencies from the `npm:` targets of the import map. */
  dependencies: Record<string, string>;
  /**
   * Always `false`: no imported module runs code at load time that a
   * bundler must keep. The worker script loaded by URL does, but bundlers
   * treat `new URL(..., import.meta.url)` targets as separate entries.
   */
  sideEffects: false;
  /** Files and folders that `npm pack` includes besides package.json. */
  files: string[];
}

/** Settings of {@link createPackageJson} that deno.json does not contain. */
export interface PackageJsonOptions {
  /** Package name on npm. */
  name: string;
  /** One-line summary. */
  description: string;
  /** Minimum Node.js version as a semver range, such as `">=20"`. */
  node: string;
  /** Paths relative to the package root that `npm pack` includes. */
  files: string[];
  /** Runtime dependencies, as {@link npmDependencies} returns them. */
  dependencies: Record<string, string>;
}

const NPM_SPECIFIER =
  /^npm:\/?((?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*)(?:@([^/]+))?(\/.*)?$/i;

/**
 * Parses an `npm:` specifier such as `npm:hash-wasm@^4.12.0` or
 * `npm:@scope/name@1/sub`.
 *
 * @throws {TypeError} The specifier does not start with `npm:` or has no
 * valid package name.
 */
export function parseNpmSpecifier(specifier: string): NpmSpecifier {
  const match = NPM_SPECIFIER.exec(specifier);
  if (match === null) {
    throw new TypeError(
      `Invalid npm specifier "${specifier}": expected npm:name@range`,
    );
  }
  return {
    name: match[1]!,
    range: match[2] ?? "*",
    subpath: match[3] ?? "",
  };
}

/**
 * Returns deno.json's exports as a map from subpath to source file, turning
 * the single-string form into `{ ".": file }`.
 *
 * @throws {TypeError} deno.json has no exports, or a target is not a
 * relative `.ts` file.
 */
export function denoExports(config: DenoConfig): Record<string, string> {
  const { exports } = config;
  if (exports === undefined) {
    throw new TypeError("deno.json has no exports: add an exports map");
  }
  const entries = typeof exports === "string" ? { ".": exports } : exports;
  for (const [subpath, target] of Object.entries(entries)) {
    if (!target.startsWith("./") || !target.endsWith(".ts")) {
      throw new TypeError(
        `Invalid deno.json export "${subpath}": "${target}" is not a ` +
          `relative .ts file such as "./mod.ts"`,
      );
    }
  }
  return entries;
}

/** Returns the output path of a source file: `./src/a.ts` → `./src/a.js`. */
export function outputPath(source: string, extension: ".js" | ".d.ts"): string {
  return source.replace(/\.ts$/, extension);
}

/** Builds the package.json `exports` map that matches deno.json's exports. */
export function packageExports(
  config: DenoConfig,
): Record<string, PackageExportTarget> {
  const result: Record<string, PackageExportTarget> = {};
  for (const [subpath, source] of Object.entries(denoExports(config))) {
    result[subpath] = {
      types: outputPath(source, ".d.ts"),
      default: outputPath(source, ".js"),
    };
  }
  return result;
}

/**
 * Returns the npm dependencies behind the bare and `npm:` specifiers that
 * the package's modules import, keyed by package name, with the range that
 * the import map or the `npm:` specifier declares. Import map entries that
 * no module imports, such as build tools, are left out.
 *
 * @throws {TypeError} A specifier resolves to something other than an npm
 * package, or one package appears with two different ranges.
 */
export function npmDependencies(
  config: DenoConfig,
  specifiers: Iterable<string>,
): Record<string, string> {
  const result: Record<string, string> = {};
  for (const specifier of specifiers) {
    if (isRelative(specifier) || specifier.startsWith("node:")) continue;
    const target = specifier.startsWith("npm:")
      ? specifier
      : resolveImportMap(specifier, config.imports ?? {});
    if (target === undefined || !target.startsWith("npm:")) {
      throw new TypeError(
        `Unsupported import "${specifier}": it resolves to ` +
          `${JSON.stringify(target ?? null)}, not to an npm: package in ` +
          "deno.json's import map",
      );
    }
    const { name, range } = parseNpmSpecifier(target);
    const previous = result[name];
    if (previous !== undefined && previous !== range) {
      throw new TypeError(
        `Package ${name} is imported with two ranges, "${previous}" and ` +
          `"${range}": use one`,
      );
    }
    result[name] = range;
  }
  const sorted = Object.entries(result).sort(([a], [b]) => a.localeCompare(b));
  return Object.fromEntries(sorted);
}

function isRelative(specifier: string): boolean {
  return specifier.startsWith("./") || specifier.startsWith("../");
}

/**
 * Generates package.json from deno.json: version, license and exports are
 * copied from it, the rest comes from `options`.
 *
 * @throws {TypeError} deno.json has no version or license, or its exports
 * have no `"."` entry.
 */
export function createPackageJson(
  config: DenoConfig,
  options: PackageJsonOptions,
): PackageJson {
  if (config.version === undefined) {
    throw new TypeError("deno.json has no version: add one");
  }
  if (config.license === undefined) {
    throw new TypeError("deno.json has no license: add one");
  }
  const exports = packageExports(config);
  const main = exports["."];
  if (main === undefined) {
    throw new TypeError('deno.json exports have no "." entry: add one');
  }
  return {
    name: options.name,
    version: config.version,
    description: options.description,
    license: config.license,
    type: "module",
    exports,
    types: main.types,
    engines: { node: options.node },
    dependencies: options.dependencies,
    sideEffects: false,
    files: options.files,
  };
}

/**
 * Compares package.json `exports` with deno.json's exports and returns one
 * message per difference: a subpath present in only one of them, a missing
 * or extra condition, or a target that does not match the source file.
 * An empty array means they match.
 */
export function checkExportsMatch(
  config: DenoConfig,
  exports: Record<string, unknown>,
): string[] {
  const problems: string[] = [];
  const expected = packageExports(config);
  for (const subpath of Object.keys(expected)) {
    if (!(subpath in exports)) {
      problems.push(`package.json exports lack "${subpath}"`);
    }
  }
  for (const [subpath, actual] of Object.entries(exports)) {
    const expectedTarget = expected[subpath];
    if (expectedTarget === undefined) {
      problems.push(
        `package.json exports "${subpath}", which deno.json does not export`,
      );
      continue;
    }
    if (typeof actual !== "object" || actual === null) {
      problems.push(
        `package.json export "${subpath}" is ${JSON.stringify(actual)}, ` +
          `expected ${JSON.stringify(expectedTarget)}`,
      );
      continue;
    }
    const conditions = Object.keys(actual);
    const expectedConditions = Object.keys(expectedTarget);
    if (conditions.join() !== expectedConditions.join()) {
      problems.push(
        `package.json export "${subpath}" has conditions ` +
          `[${conditions.join(", ")}], expected ` +
          `[${expectedConditions.join(", ")}] in this order`,
      );
    }
    for (const condition of expectedConditions) {
      const target = (actual as Record<string, unknown>)[condition];
      const file = expectedTarget[condition as keyof PackageExportTarget];
      if (target !== undefined && target !== file) {
        problems.push(
          `package.json export "${subpath}" maps "${condition}" to ` +
            `${JSON.stringify(target)}, but deno.json's ` +
            `${expectedSource(config, subpath)} builds to "${file}"`,
        );
      }
    }
  }
  return problems;
}

function expectedSource(config: DenoConfig, subpath: string): string {
  return denoExports(config)[subpath] ?? subpath;
}

/**
 * Maps an import specifier of the source to the one the npm package uses.
 * Relative `.ts` specifiers get `.js`. Bare specifiers from the import map
 * and `npm:` specifiers become bare package names with their subpath.
 * `node:` specifiers and other relative ones stay as they are.
 *
 * @throws {TypeError} The specifier is a `jsr:`, `http:` or `https:` import,
 * or an import map target of those kinds, which npm cannot install.
 */
export function mapSpecifier(
  specifier: string,
  imports: Record<string, string> = {},
): string {
  if (isRelative(specifier)) {
    return specifier.replace(/\.ts$/, ".js");
  }
  if (specifier.startsWith("node:")) return specifier;
  if (specifier.startsWith("npm:")) {
    const { name, subpath } = parseNpmSpecifier(specifier);
    return name + subpath;
  }
  const mapped = resolveImportMap(specifier, imports);
  if (mapped !== undefined) {
    if (mapped.startsWith("npm:")) return mapSpecifier(mapped, imports);
    throw new TypeError(
      `Unsupported import "${specifier}": its import map target ` +
        `"${mapped}" is not an npm: package, so the npm build cannot ` +
        "depend on it",
    );
  }
  if (/^(jsr|https?):/.test(specifier)) {
    throw new TypeError(
      `Unsupported import "${specifier}": the npm build handles only ` +
        "relative, node: and npm: imports",
    );
  }
  return specifier;
}

/**
 * Resolves a bare specifier through the import map: an exact key first,
 * then the longest key ending in `/` that prefixes it.
 */
export function resolveImportMap(
  specifier: string,
  imports: Record<string, string>,
): string | undefined {
  const exact = imports[specifier];
  if (exact !== undefined) return exact;
  let best: string | undefined;
  for (const key of Object.keys(imports)) {
    if (
      key.endsWith("/") && specifier.startsWith(key) &&
      (best === undefined || key.length > best.length)
    ) {
      best = key;
    }
  }
  if (best === undefined) return undefined;
  return imports[best]! + specifier.slice(best.length);
}

const WORKER_URL =
  /new\s+URL\(\s*[`'"](\.{1,2}\/[\w./-]+?)(\.ts)?(?:\$\{[^}`]*\})?[`'"]\s*,\s*import\.meta\.url\s*\)/g;

/**
 * Finds the modules that a source file loads by URL, as in
 * `new URL("./worker.ts", import.meta.url)` or with a computed extension,
 * `` new URL(`./worker${extension}`, import.meta.url) ``. They are not
 * imports, so the build adds them as entry points. Returns each path
 * without extension, relative to the file, such as `./worker`.
 */
export function findUrlModules(source: string): string[] {
  const found = new Set<string>();
  for (const match of source.matchAll(WORKER_URL)) {
    found.add(match[1]!.replace(/\.ts$/, ""));
  }
  return [...found];
}

/**
 * Extracts the `declare namespace Deno { ... }` blocks from the output of
 * `deno types`. The build type-checks against the DOM library that npm
 * users compile with, and adds only these blocks, so that source code that
 * tests for `Deno` at run time still type-checks.
 */
export function extractDenoNamespace(denoTypes: string): string {
  const lines = denoTypes.split("\n");
  const blocks: string[] = [];
  for (let start = 0; start < lines.length; start++) {
    if (lines[start] !== "declare namespace Deno {") continue;
    const end = lines.indexOf("}", start);
    if (end === -1) break;
    blocks.push(lines.slice(start, end + 1).join("\n"));
    start = end;
  }
  return blocks.join("\n\n") + "\n";
}

/** Formats a byte count as `12.3 kB` (1 kB = 1000 bytes, as npm prints). */
export function formatSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} kB`;
  return `${(bytes / 1_000_000).toFixed(2)} MB`;
}
