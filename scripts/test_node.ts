/**
 * Runs the test suite under Node.js against the installed npm package. Run
 * it with `deno task test:node`.
 *
 * The steps: build `npm/`, `npm pack` it, install the tarball into
 * `.npm-test/` (npm fetches hash-wasm), compile every `tests/*_test.ts` and
 * its helpers to JavaScript with imports of `../mod.ts` and `../testing.ts`
 * pointed at the package, and run them with `node --test`.
 *
 * Imports of `../src/*.ts` map to the same compiled file inside the
 * installed package, so internals and exports share one module instance.
 * A test file is skipped as a whole when it is on {@link SKIPPED_FILES} or
 * imports something the package does not contain, such as `scripts/`.
 * Inside a running file, tests/node/deno_shim.mjs skips each test that
 * reaches a Deno API it does not provide, such as `Deno.serve`. The shim is
 * imported as a local `Deno` binding, so no `Deno` global exists for the
 * library under test.
 *
 * @module
 */

// deno-lint-ignore-file no-console -- a test script reports on the console.

import ts from "typescript";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildNpm, NPM_NAME, rewriteSpecifiers } from "./build_npm.ts";
import { type DenoConfig, denoExports, mapSpecifier } from "./_npm_package.ts";

/** Test files that never run under Node.js, with the reason. */
export const SKIPPED_FILES: Record<string, string> = {
  "live_test.ts":
    "runs against the server at STASH_URL; use deno task test:live",
};

/** Maximum run time of `node --test`, in milliseconds. */
const NODE_TEST_TIMEOUT_MS = 300_000;
/** Maximum run time of one test under `node --test`, in milliseconds. */
const PER_TEST_TIMEOUT_MS = 60_000;

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TESTS = join(ROOT, "tests");
const SCRATCH = join(ROOT, ".npm-test");

/** A test source compiled for Node.js, or the reason it cannot run there. */
interface CompiledFile {
  /** Path of the source, relative to tests/. */
  source: string;
  /** JavaScript text, when the file compiled. */
  output?: string;
  /** Relative imports of other files in tests/, as paths relative to it. */
  helpers: string[];
  /** Why the file cannot run under Node.js. */
  unsupported?: string;
}

async function main(): Promise<number> {
  const started = performance.now();
  const config = JSON.parse(
    await Deno.readTextFile(join(ROOT, "deno.json")),
  ) as DenoConfig;
  const build = await buildNpm({ root: ROOT, outDir: join(ROOT, "npm") });

  await Deno.remove(SCRATCH, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await Deno.mkdir(SCRATCH, { recursive: true });
  const tarball = await packTarball(join(ROOT, "npm"), SCRATCH);
  await installTarball(tarball, build.packageJson.version);
  const packageDir = join(SCRATCH, "node_modules", ...NPM_NAME.split("/"));

  const sources = await listTestSources();
  const compiled = new Map<string, CompiledFile>();
  for (const source of sources) {
    compiled.set(source, await compileTest(source, config, packageDir));
  }
  const outTests = join(SCRATCH, "tests");
  // Copies fixtures/ and node/deno_shim.mjs.
  await copyAssets(TESTS, outTests);

  const runnable: string[] = [];
  const skipped: [string, string][] = [];
  for (const source of sources.filter((path) => /_test\.ts$/.test(path))) {
    const reason = SKIPPED_FILES[source] ??
      unsupportedReason(source, compiled);
    if (reason !== undefined) {
      skipped.push([source, reason]);
      continue;
    }
    runnable.push(source.replace(/\.ts$/, ".js"));
  }
  for (const file of compiled.values()) {
    if (file.output === undefined) continue;
    const target = join(outTests, file.source.replace(/\.ts$/, ".js"));
    await Deno.mkdir(dirname(target), { recursive: true });
    await Deno.writeTextFile(target, file.output);
  }
  const skippedFile = "node/skipped_files.test.mjs";
  await Deno.writeTextFile(join(outTests, skippedFile), skippedTests(skipped));
  for (const [source, reason] of skipped) {
    console.log(`skipped under Node.js: tests/${source}: ${reason}`);
  }
  console.log(
    `prepared in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
      `running ${runnable.length} test files with node --test`,
  );
  return await runNodeTests([...runnable, skippedFile], outTests);
}

async function run(
  command: string,
  args: string[],
  cwd: string,
): Promise<string> {
  const output = await new Deno.Command(command, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr);
    throw new Error(
      `${command} ${args.join(" ")} failed with exit code ` +
        `${output.code}:\n${stderr}${stdout}`,
    );
  }
  return stdout;
}

async function packTarball(packageDir: string, into: string): Promise<string> {
  const stdout = await run(
    "npm",
    ["pack", "--json", "--ignore-scripts", "--pack-destination", into],
    packageDir,
  );
  const [pack] = JSON.parse(stdout) as { filename: string }[];
  return join(into, pack!.filename);
}

/** Installs the tarball and its dependencies into the scratch folder. */
async function installTarball(tarball: string, version: string): Promise<void> {
  const manifest = {
    name: "stash-client-node-tests",
    version,
    private: true,
    type: "module",
    dependencies: { [NPM_NAME]: `file:./${relative(SCRATCH, tarball)}` },
  };
  await Deno.writeTextFile(
    join(SCRATCH, "package.json"),
    JSON.stringify(manifest, null, 2) + "\n",
  );
  await run(
    "npm",
    [
      "install",
      "--no-audit",
      "--no-fund",
      "--no-package-lock",
      "--ignore-scripts",
    ],
    SCRATCH,
  );
}

/** Lists the .ts files in tests/, outside node/ and fixtures/. */
async function listTestSources(folder = ""): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(join(TESTS, folder))) {
    const path = folder === "" ? entry.name : `${folder}/${entry.name}`;
    if (entry.isDirectory) {
      if (path === "node" || path === "fixtures") continue;
      found.push(...await listTestSources(path));
    } else if (entry.isFile && path.endsWith(".ts")) {
      found.push(path);
    }
  }
  return found.sort();
}

/**
 * Compiles one test source. Imports of deno.json's export targets become
 * the package's subpaths, imports of `src/` point into the installed
 * package, and other imports outside tests/ make the file unsupported.
 */
async function compileTest(
  source: string,
  config: DenoConfig,
  packageDir: string,
): Promise<CompiledFile> {
  const path = join(TESTS, source);
  const outPath = join(SCRATCH, "tests", source);
  const exported = new Map<string, string>();
  for (const [subpath, target] of Object.entries(denoExports(config))) {
    exported.set(resolve(ROOT, target), NPM_NAME + subpath.slice(1));
  }
  const file: CompiledFile = { source, helpers: [] };
  const problems: string[] = [];

  const mapTestSpecifier = (specifier: string): string => {
    if (!specifier.startsWith("./") && !specifier.startsWith("../")) {
      try {
        return mapSpecifier(specifier, config.imports ?? {});
      } catch (error) {
        problems.push(String((error as Error).message));
        return specifier;
      }
    }
    const target = resolve(dirname(path), specifier);
    const packageName = exported.get(target);
    if (packageName !== undefined) return packageName;
    const inRoot = relative(ROOT, target);
    if (inRoot.startsWith("src/") && target.endsWith(".ts")) {
      const compiled = join(packageDir, inRoot.replace(/\.ts$/, ".js"));
      try {
        Deno.statSync(compiled);
      } catch {
        problems.push(`imports ${inRoot}, which the package does not ship`);
      }
      return relativeSpecifier(dirname(outPath), compiled);
    }
    const inTests = relative(TESTS, target);
    if (!inTests.startsWith("..")) {
      if (target.endsWith(".ts")) file.helpers.push(inTests);
      return mapSpecifier(specifier);
    }
    problems.push(`imports ${inRoot}, which is outside the package`);
    return specifier;
  };

  const text = await Deno.readTextFile(path);
  const output = ts.transpileModule(text, {
    fileName: path,
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ES2022,
      isolatedModules: true,
      allowImportingTsExtensions: true,
    },
    transformers: {
      before: [rewriteSpecifiers<ts.SourceFile>(mapTestSpecifier)],
    },
  });
  if (problems.length > 0) {
    file.unsupported = problems.join("; ");
    return file;
  }
  const shim = relativeSpecifier(
    dirname(outPath),
    join(SCRATCH, "tests", "node", "deno_shim.mjs"),
  );
  file.output = `import { Deno } from ${JSON.stringify(shim)};\n` +
    output.outputText;
  return file;
}

function relativeSpecifier(from: string, to: string): string {
  const path = relative(from, to);
  return path.startsWith(".") ? path : `./${path}`;
}

/** Returns why a test or one of its helpers cannot run, if it cannot. */
function unsupportedReason(
  source: string,
  compiled: Map<string, CompiledFile>,
): string | undefined {
  const seen = new Set<string>();
  const queue = [source];
  for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
    if (seen.has(next)) continue;
    seen.add(next);
    const file = compiled.get(next);
    if (file === undefined) return `imports tests/${next}, which is missing`;
    if (file.unsupported !== undefined) {
      return next === source
        ? file.unsupported
        : `tests/${next} ${file.unsupported}`;
    }
    queue.push(...file.helpers);
  }
  return undefined;
}

/** Copies the files in tests/ that are not TypeScript, such as fixtures. */
async function copyAssets(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory) {
      await copyAssets(source, target);
    } else if (entry.isFile && !entry.name.endsWith(".ts")) {
      await Deno.copyFile(source, target);
    }
  }
}

/** Generates a test file that reports each skipped test file as skipped. */
function skippedTests(skipped: [string, string][]): string {
  const lines = ['import { test } from "node:test";', ""];
  for (const [source, reason] of skipped) {
    lines.push(
      `test(${JSON.stringify(`tests/${source}`)}, ` +
        `{ skip: ${JSON.stringify(reason)} }, () => {});`,
    );
  }
  return lines.join("\n") + "\n";
}

/**
 * Returns the folder of values written by the other Stash clients, beside
 * the checkout, for tests that no longer sit where their relative path
 * leads.
 */
function upstreamFixtures(): string {
  return new URL("../../shared/fixtures/upstream", import.meta.url).pathname;
}

/** Runs `node --test` and returns its exit code; kills it on timeout. */
async function runNodeTests(files: string[], cwd: string): Promise<number> {
  const child = new Deno.Command("node", {
    args: [
      "--test",
      "--test-reporter=tap",
      `--test-timeout=${PER_TEST_TIMEOUT_MS}`,
      ...files,
    ],
    cwd,
    env: { STASH_UPSTREAM_FIXTURES: upstreamFixtures() },
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const timer = setTimeout(() => {
    console.error(
      `node --test ran longer than ${NODE_TEST_TIMEOUT_MS / 1000} s: ` +
        `stopping process ${child.pid}`,
    );
    child.kill("SIGTERM");
  }, NODE_TEST_TIMEOUT_MS);
  try {
    const status = await child.status;
    return status.success ? 0 : (status.code === 0 ? 1 : status.code);
  } finally {
    clearTimeout(timer);
  }
}

if (import.meta.main) {
  Deno.exit(await main());
}
