/**
 * Builds the npm package into `npm/`: ES modules and declaration files for
 * every module that deno.json's exports reach, and a package.json generated
 * from deno.json. Run it with `deno task build:npm`.
 *
 * The TypeScript compiler type-checks the sources against the DOM library
 * that npm users compile with, and a type error fails the build. A second
 * check against the ES2023 library reports APIs that Node.js 20 lacks, as
 * warnings.
 *
 * @module
 */

// deno-lint-ignore-file no-console -- a build script reports on the console.

import ts from "typescript";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  checkExportsMatch,
  createPackageJson,
  type DenoConfig,
  denoExports,
  extractDenoNamespace,
  findUrlModules,
  formatSize,
  mapSpecifier,
  npmDependencies,
  type PackageJson,
} from "./_npm_package.ts";

/** Name of the package on npm. */
export const NPM_NAME = "@stash-kv/client";
/** Minimum Node.js version, as a semver range. */
export const NODE_RANGE = ">=20.3";

/** Settings of {@link buildNpm}. */
export interface BuildOptions {
  /** Repository root, the folder with deno.json. */
  root: string;
  /** Output folder, removed and written anew. */
  outDir: string;
  /** Prints the size report at the end. @default true */
  report?: boolean;
}

/** Summary of the files that {@link buildNpm} wrote. */
export interface BuildResult {
  /** The generated package.json. */
  packageJson: PackageJson;
  /** Paths of the written files, relative to the output folder. */
  files: string[];
  /** Node.js 20 compatibility warnings, one `file:line: message` each. */
  node20Warnings: string[];
}

/** Raised when the build fails; the message lists every problem. */
export class BuildError extends Error {
  /** Creates the error with the problems as its message. */
  constructor(message: string) {
    super(message);
    this.name = "BuildError";
  }
}

const DENO_TYPES_FILE = "/deno-namespace/lib.deno.ns.d.ts";

// Libraries that npm users compile a browser or Node.js project against.
const DOM_LIBS = [
  "lib.esnext.d.ts",
  "lib.dom.d.ts",
  "lib.dom.iterable.d.ts",
  "lib.dom.asynciterable.d.ts",
];

// ES2023 plus the parts of later editions that Node.js 20 ships
// (String.prototype.isWellFormed, Atomics.waitAsync, Symbol.dispose and
// Symbol.asyncDispose). Promise.withResolvers, Object.groupBy, the new Set
// methods and iterator helpers are missing there.
const NODE20_LIBS = [
  "lib.es2023.d.ts",
  "lib.es2024.string.d.ts",
  "lib.es2024.sharedmemory.d.ts",
  "lib.esnext.disposable.d.ts",
  "lib.dom.d.ts",
  "lib.dom.iterable.d.ts",
  "lib.dom.asynciterable.d.ts",
];

// deno.json compiler options that describe Deno's environment, not the code.
const DENO_ONLY_OPTIONS = new Set(["lib", "types", "jsx", "jsxImportSource"]);

/**
 * Builds the package and returns what it wrote.
 *
 * @throws {BuildError} A type error, an unsupported import, a missing entry
 * file or exports that drift from deno.json.
 */
export async function buildNpm(options: BuildOptions): Promise<BuildResult> {
  const root = resolve(options.root);
  const outDir = resolve(options.outDir);
  const config = JSON.parse(
    await Deno.readTextFile(join(root, "deno.json")),
  ) as DenoConfig;

  const entries = await entryFiles(root, config);
  const compilerOptions = baseCompilerOptions(root, config, outDir);
  const host = await createHost(compilerOptions);
  const { program, roots } = createProgramWithUrlModules(
    root,
    entries,
    compilerOptions,
    host,
  );

  const errors = ts.getPreEmitDiagnostics(program);
  if (errors.length > 0) {
    throw new BuildError(
      "Type check failed:\n" + formatDiagnostics(errors, root),
    );
  }
  const node20Warnings = checkNode20(root, roots, compilerOptions, host);

  const sources = program.getSourceFiles().filter((file) =>
    !file.isDeclarationFile && isInside(root, file.fileName)
  );
  const imported = collectImports(sources);
  const dependencies = npmDependencies(config, imported);

  await Deno.remove(outDir, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  const written = new Map<string, string>();
  emitDeclarations(program, config, root, outDir, written);
  emitJavaScript(sources, compilerOptions, config, root, outDir, written);
  checkEmitted(written);
  for (const [path, text] of written) {
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeTextFile(path, text);
  }

  const packageJson = createPackageJson(config, {
    name: NPM_NAME,
    description: await moduleSummary(join(root, "mod.ts")),
    node: NODE_RANGE,
    files: packageFiles(outDir, [...written.keys()]),
    dependencies,
  });
  await Deno.writeTextFile(
    join(outDir, "package.json"),
    JSON.stringify(packageJson, null, 2) + "\n",
  );
  await checkWrittenPackage(config, outDir);

  const copied = await copyIfPresent(root, outDir, ["README.md", "LICENSE"]);
  const files = [...written.keys(), ...copied].map((path) =>
    relative(outDir, path)
  ).sort();
  const result = { packageJson, files, node20Warnings };
  if (options.report ?? true) await printReport(result, outDir);
  return result;
}

async function entryFiles(root: string, config: DenoConfig): Promise<string[]> {
  const files: string[] = [];
  for (const [subpath, source] of Object.entries(denoExports(config))) {
    const path = join(root, source);
    try {
      await Deno.stat(path);
    } catch (error) {
      throw new BuildError(
        `deno.json export "${subpath}" points to ${source}, which could ` +
          `not be read: ${error}`,
      );
    }
    files.push(path);
  }
  return files;
}

function baseCompilerOptions(
  root: string,
  config: DenoConfig,
  outDir: string,
): ts.CompilerOptions {
  const fromConfig = Object.fromEntries(
    Object.entries(config.compilerOptions ?? {}).filter(([key]) =>
      !DENO_ONLY_OPTIONS.has(key)
    ),
  );
  const converted = ts.convertCompilerOptionsFromJson(fromConfig, root);
  if (converted.errors.length > 0) {
    throw new BuildError(
      "Invalid compilerOptions in deno.json:\n" +
        formatDiagnostics(converted.errors, root),
    );
  }
  return {
    ...converted.options,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ES2022,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: DOM_LIBS,
    types: [],
    strict: true,
    declaration: true,
    isolatedModules: true,
    allowImportingTsExtensions: true,
    rewriteRelativeImportExtensions: true,
    skipLibCheck: true,
    noEmitOnError: true,
    rootDir: root,
    outDir,
    paths: npmTypePaths(root, config),
    newLine: ts.NewLineKind.LineFeed,
  };
}

/**
 * Maps each bare import map key with an `npm:` target to the package's
 * folder in Deno's npm cache, so that the compiler finds its types without
 * a node_modules folder.
 */
function npmTypePaths(
  root: string,
  config: DenoConfig,
): Record<string, string[]> {
  // Resolving from a file in the root applies deno.json's import map.
  const require = createRequire(join(root, "deno.json"));
  const paths: Record<string, string[]> = {};
  for (const [key, target] of Object.entries(config.imports ?? {})) {
    if (!target.startsWith("npm:") || key.endsWith("/")) continue;
    let manifest: string;
    try {
      manifest = require.resolve(`${key}/package.json`);
    } catch (error) {
      throw new BuildError(
        `Could not find the package for import "${key}" (${target}): ` +
          `run "deno install" first. ${error}`,
      );
    }
    const folder = dirname(manifest);
    paths[key] = [folder];
    paths[`${key}/*`] = [`${folder}/*`];
  }
  return paths;
}

async function createHost(
  options: ts.CompilerOptions,
): Promise<ts.CompilerHost> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["types"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new BuildError(
      `"deno types" failed: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
  const denoTypes = extractDenoNamespace(
    new TextDecoder().decode(output.stdout),
  );
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, ...rest) =>
    fileName === DENO_TYPES_FILE
      ? ts.createSourceFile(fileName, denoTypes, languageVersion)
      : getSourceFile(fileName, languageVersion, ...rest);
  host.fileExists = (fileName) =>
    fileName === DENO_TYPES_FILE || fileExists(fileName);
  host.readFile = (fileName) =>
    fileName === DENO_TYPES_FILE ? denoTypes : readFile(fileName);
  return host;
}

/**
 * Creates the program from the entry files, then adds every module that a
 * source file loads with `new URL("./name.ts", import.meta.url)`, such as a
 * worker script, until no new one turns up.
 */
function createProgramWithUrlModules(
  root: string,
  entries: string[],
  options: ts.CompilerOptions,
  host: ts.CompilerHost,
): { program: ts.Program; roots: string[] } {
  const roots = [...entries, DENO_TYPES_FILE];
  let program = ts.createProgram({ rootNames: roots, options, host });
  // Each pass adds at least one root, so the source file count bounds it.
  for (let pass = 0; pass < 100; pass++) {
    const added: string[] = [];
    for (const file of program.getSourceFiles()) {
      if (file.isDeclarationFile || !isInside(root, file.fileName)) continue;
      for (const base of findUrlModules(file.text)) {
        // A URL that names a .js file points at an asset, not at a source.
        if (/\.[cm]?js$/.test(base)) continue;
        const path = resolve(dirname(file.fileName), `${base}.ts`);
        if (!host.fileExists(path)) {
          throw new BuildError(
            `${relative(root, file.fileName)} loads ${base} by URL, but ` +
              `${relative(root, path)} does not exist`,
          );
        }
        if (!roots.includes(path) && !added.includes(path)) added.push(path);
      }
    }
    if (added.length === 0) return { program, roots };
    roots.push(...added);
    program = ts.createProgram({
      rootNames: roots,
      options,
      host,
      oldProgram: program,
    });
  }
  throw new BuildError("Finding modules loaded by URL did not settle");
}

/** Type-checks against Node.js 20's library and returns the new errors. */
function checkNode20(
  root: string,
  roots: string[],
  options: ts.CompilerOptions,
  host: ts.CompilerHost,
): string[] {
  const program = ts.createProgram({
    rootNames: roots,
    options: { ...options, lib: NODE20_LIBS },
    host,
  });
  return ts.getPreEmitDiagnostics(program).map((diagnostic) =>
    formatDiagnostics([diagnostic], root).trim()
  );
}

function collectImports(sources: readonly ts.SourceFile[]): Set<string> {
  const specifiers = new Set<string>();
  for (const file of sources) {
    for (const statement of file.statements) {
      if (
        (ts.isImportDeclaration(statement) ||
          ts.isExportDeclaration(statement)) &&
        statement.moduleSpecifier !== undefined &&
        ts.isStringLiteral(statement.moduleSpecifier)
      ) {
        specifiers.add(statement.moduleSpecifier.text);
      }
    }
  }
  return specifiers;
}

/**
 * Returns a transformer that maps module specifiers with
 * {@link mapSpecifier}: in import and export declarations, `import()` types
 * and calls, and in `new URL("./x.ts", import.meta.url)`.
 */
function specifierTransformer<T extends ts.Node>(
  config: DenoConfig,
): ts.TransformerFactory<T> {
  const imports = config.imports ?? {};
  return rewriteSpecifiers((specifier) => mapSpecifier(specifier, imports));
}

/**
 * Returns a transformer that replaces module specifiers with `map`'s result:
 * in import and export declarations, `import()` types and calls, and in
 * `new URL("./x.ts", import.meta.url)`.
 */
export function rewriteSpecifiers<T extends ts.Node>(
  map: (specifier: string) => string,
): ts.TransformerFactory<T> {
  return (context) => {
    const { factory } = context;
    const mapLiteral = (literal: ts.StringLiteral): ts.StringLiteral => {
      const mapped = map(literal.text);
      return mapped === literal.text
        ? literal
        : factory.createStringLiteral(mapped);
    };
    const visit = (node: ts.Node): ts.Node => {
      if (
        ts.isImportDeclaration(node) &&
        ts.isStringLiteral(node.moduleSpecifier)
      ) {
        return factory.updateImportDeclaration(
          node,
          node.modifiers,
          node.importClause,
          mapLiteral(node.moduleSpecifier),
          node.attributes,
        );
      }
      if (
        ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined &&
        ts.isStringLiteral(node.moduleSpecifier)
      ) {
        return factory.updateExportDeclaration(
          node,
          node.modifiers,
          node.isTypeOnly,
          node.exportClause,
          mapLiteral(node.moduleSpecifier),
          node.attributes,
        );
      }
      if (
        ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) &&
        ts.isStringLiteral(node.argument.literal)
      ) {
        return factory.updateImportTypeNode(
          node,
          factory.updateLiteralTypeNode(
            node.argument,
            mapLiteral(node.argument.literal),
          ),
          node.attributes,
          node.qualifier,
          node.typeArguments?.map((type) =>
            ts.visitNode(type, visit, ts.isTypeNode)
          ),
          node.isTypeOf,
        );
      }
      if (isImportCall(node)) {
        const [first, ...rest] = node.arguments;
        return factory.updateCallExpression(
          node,
          node.expression,
          node.typeArguments,
          [mapLiteral(first as ts.StringLiteral), ...rest],
        );
      }
      if (isUrlFromImportMeta(node)) {
        const [first, ...rest] = node.arguments ?? [];
        return factory.updateNewExpression(
          node,
          node.expression,
          node.typeArguments,
          [mapLiteral(first as ts.StringLiteral), ...rest],
        );
      }
      return ts.visitEachChild(node, visit, context);
    };
    return (file) => ts.visitNode(file, visit) as T;
  };
}

function isImportCall(node: ts.Node): node is ts.CallExpression {
  return ts.isCallExpression(node) &&
    node.expression.kind === ts.SyntaxKind.ImportKeyword &&
    node.arguments[0] !== undefined && ts.isStringLiteral(node.arguments[0]);
}

/** Matches `new URL("literal", import.meta.url)`. */
function isUrlFromImportMeta(node: ts.Node): node is ts.NewExpression {
  if (!ts.isNewExpression(node) || !ts.isIdentifier(node.expression)) {
    return false;
  }
  const [first, second] = node.arguments ?? [];
  return node.expression.text === "URL" && first !== undefined &&
    ts.isStringLiteral(first) && second !== undefined &&
    ts.isPropertyAccessExpression(second) &&
    ts.isMetaProperty(second.expression) && second.name.text === "url";
}

function emitDeclarations(
  program: ts.Program,
  config: DenoConfig,
  root: string,
  outDir: string,
  written: Map<string, string>,
): void {
  const result = program.emit(
    undefined,
    (fileName, text) => {
      if (isInside(outDir, fileName)) written.set(fileName, text);
    },
    undefined,
    true,
    { afterDeclarations: [specifierTransformer(config)] },
  );
  if (result.emitSkipped || result.diagnostics.length > 0) {
    throw new BuildError(
      "Declaration emit failed:\n" +
        formatDiagnostics(result.diagnostics, root),
    );
  }
}

/**
 * Emits each module with transpileModule and comments removed: the
 * declaration files keep the documentation, so the JavaScript need not.
 */
function emitJavaScript(
  sources: readonly ts.SourceFile[],
  options: ts.CompilerOptions,
  config: DenoConfig,
  root: string,
  outDir: string,
  written: Map<string, string>,
): void {
  const { paths: _paths, outDir: _outDir, ...rest } = options;
  for (const file of sources) {
    const output = ts.transpileModule(file.text, {
      fileName: file.fileName,
      compilerOptions: { ...rest, removeComments: true, declaration: false },
      reportDiagnostics: true,
      transformers: { before: [specifierTransformer(config)] },
    });
    if ((output.diagnostics ?? []).length > 0) {
      throw new BuildError(
        "Transpiling failed:\n" + formatDiagnostics(output.diagnostics!, root),
      );
    }
    const target = join(outDir, relative(root, file.fileName))
      .replace(/\.ts$/, ".js");
    written.set(target, output.outputText);
  }
}

const SPECIFIER_IN_OUTPUT = /(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']/g;

/** Fails when an emitted file still imports a `.ts`, `npm:` or `jsr:` path. */
function checkEmitted(written: Map<string, string>): void {
  const problems: string[] = [];
  for (const [path, text] of written) {
    // JSDoc examples import "./name.ts" on purpose, so skip comment lines.
    const code = text.split("\n").filter((line) =>
      !/^\s*(\*|\/\/|\/\*)/.test(line)
    ).join("\n");
    for (const match of code.matchAll(SPECIFIER_IN_OUTPUT)) {
      const specifier = match[1]!;
      if (/\.ts$|^(npm|jsr|https?):/.test(specifier)) {
        problems.push(`${path} imports "${specifier}"`);
      }
    }
    if (path.endsWith(".d.ts")) {
      for (const line of code.split("\n")) {
        if (/\bDeno\./.test(line)) {
          problems.push(
            `${path} refers to the Deno namespace, which npm users lack: ` +
              line.trim(),
          );
        }
      }
    }
  }
  if (problems.length > 0) {
    throw new BuildError("Emitted files are invalid:\n" + problems.join("\n"));
  }
}

/** Lists the top-level files and folders of the output for `files`. */
function packageFiles(outDir: string, paths: string[]): string[] {
  const top = new Set<string>();
  for (const path of paths) {
    const [first, ...rest] = relative(outDir, path).split("/");
    top.add(rest.length > 0 ? `${first}/` : first!);
  }
  return [...top].sort();
}

async function checkWrittenPackage(
  config: DenoConfig,
  outDir: string,
): Promise<void> {
  const written = JSON.parse(
    await Deno.readTextFile(join(outDir, "package.json")),
  ) as { exports?: Record<string, unknown> };
  const problems = checkExportsMatch(config, written.exports ?? {});
  for (const target of Object.values(written.exports ?? {})) {
    for (const file of Object.values(target as Record<string, string>)) {
      try {
        await Deno.stat(join(outDir, file));
      } catch {
        problems.push(`package.json exports ${file}, which was not built`);
      }
    }
  }
  if (problems.length > 0) {
    throw new BuildError(
      "package.json exports drift from deno.json:\n" + problems.join("\n"),
    );
  }
}

/** Returns the first sentence of a module's leading JSDoc comment. */
async function moduleSummary(path: string): Promise<string> {
  const text = await Deno.readTextFile(path);
  const comment = /^\/\*\*([\s\S]*?)\*\//.exec(text)?.[1];
  const prose = (comment ?? "").split("\n").map((line) =>
    line.replace(/^\s*\* ?/, "")
  ).join(" ").replace(/\s+/g, " ").trim();
  const sentence = /^(.+?\.)(\s|$)/.exec(prose)?.[1];
  if (sentence === undefined) {
    throw new BuildError(
      `${path} has no leading JSDoc sentence to use as the description`,
    );
  }
  return sentence;
}

async function copyIfPresent(
  root: string,
  outDir: string,
  names: string[],
): Promise<string[]> {
  const copied: string[] = [];
  for (const name of names) {
    try {
      await Deno.copyFile(join(root, name), join(outDir, name));
      copied.push(join(outDir, name));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      console.warn(`warning: ${name} not found, the package ships without it`);
    }
  }
  return copied;
}

/** Sizes reported after a build, in bytes. */
export interface PackageSizes {
  /** The `.tgz` that `npm pack` writes. */
  packed: number;
  /** All files in the tarball. */
  unpacked: number;
  /** JavaScript that importing the `"."` export loads, without dependencies. */
  mainJs: number;
  /** {@link PackageSizes.mainJs} compressed with gzip. */
  mainJsGzip: number;
}

/** Measures the package in `outDir` with `npm pack --dry-run`. */
export async function measurePackage(outDir: string): Promise<PackageSizes> {
  const output = await new Deno.Command("npm", {
    args: ["pack", "--dry-run", "--json", "--ignore-scripts"],
    cwd: outDir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new BuildError(
      `npm pack --dry-run failed: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
  const [pack] = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    size: number;
    unpackedSize: number;
  }[];
  const mainFiles = await importClosure(join(outDir, "mod.js"));
  let mainJs = 0;
  const chunks: Uint8Array[] = [];
  for (const file of mainFiles) {
    const bytes = await Deno.readFile(file);
    mainJs += bytes.length;
    chunks.push(bytes);
  }
  const gzip = new Blob(chunks as BlobPart[]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  const mainJsGzip = (await new Response(gzip).arrayBuffer()).byteLength;
  return {
    packed: pack!.size,
    unpacked: pack!.unpackedSize,
    mainJs,
    mainJsGzip,
  };
}

/** Follows relative imports from an emitted module; returns every file. */
async function importClosure(entry: string): Promise<string[]> {
  const seen = new Set<string>([entry]);
  const queue = [entry];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    const text = await Deno.readTextFile(file);
    for (const match of text.matchAll(SPECIFIER_IN_OUTPUT)) {
      const specifier = match[1]!;
      if (!specifier.startsWith(".")) continue;
      const path = resolve(dirname(file), specifier);
      if (!seen.has(path)) {
        seen.add(path);
        queue.push(path);
      }
    }
    for (const base of findUrlModules(text)) {
      const name = /\.[cm]?js$/.test(base) ? base : `${base}.js`;
      const path = resolve(dirname(file), name);
      if (!seen.has(path)) {
        seen.add(path);
        queue.push(path);
      }
    }
  }
  return [...seen];
}

async function printReport(result: BuildResult, outDir: string): Promise<void> {
  for (const warning of result.node20Warnings) {
    console.warn(`warning: Node.js 20 lacks an API used at ${warning}`);
  }
  const sizes = await measurePackage(outDir);
  const { name, version } = result.packageJson;
  console.log(
    `Built ${name}@${version} in ${relative(Deno.cwd(), outDir) || "."}: ` +
      `${result.files.length} files`,
  );
  console.log(
    `  package (npm pack): ${formatSize(sizes.packed)} packed, ` +
      `${formatSize(sizes.unpacked)} unpacked`,
  );
  console.log(
    `  client code loaded by "${name}", without dependencies: ` +
      `${formatSize(sizes.mainJs)} JavaScript, ` +
      `${formatSize(sizes.mainJsGzip)} gzipped`,
  );
}

/** Formats diagnostics as `file:line:column: message (TSnnnn)` lines. */
function formatDiagnostics(
  diagnostics: readonly ts.Diagnostic[],
  root: string,
): string {
  return diagnostics.map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(
      diagnostic.messageText,
      "\n",
    );
    const code = `TS${diagnostic.code}`;
    const { file, start } = diagnostic;
    if (file === undefined || start === undefined) {
      return `${message} (${code})`;
    }
    const { line, character } = file.getLineAndCharacterOfPosition(start);
    const where = `${relative(root, file.fileName)}:${line + 1}:${
      character + 1
    }`;
    return `${where}: ${message} (${code})`;
  }).join("\n") + "\n";
}

function isInside(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel !== "" && !rel.startsWith("..") && !rel.startsWith("/");
}

if (import.meta.main) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const started = performance.now();
  try {
    await buildNpm({ root, outDir: join(root, "npm") });
  } catch (error) {
    if (!(error instanceof BuildError)) throw error;
    console.error(error.message);
    Deno.exit(1);
  }
  console.log(`  took ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
