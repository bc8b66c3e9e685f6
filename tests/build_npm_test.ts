import assert from "node:assert/strict";
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
  parseNpmSpecifier,
  resolveImportMap,
} from "../scripts/_npm_package.ts";

const CONFIG: DenoConfig = {
  name: "@stash/client",
  version: "1.2.3",
  license: "MIT",
  exports: { ".": "./mod.ts", "./testing": "./testing.ts" },
  imports: {
    "hash-wasm": "npm:hash-wasm@^4.12.0",
    "typescript": "npm:typescript@5.9.3",
    "@scope/lib/": "npm:/@scope/lib@2/",
    "remote": "jsr:@std/path@1",
  },
};

const OPTIONS = {
  name: "@stash-kv/client",
  description: "A client.",
  node: ">=20",
  files: ["mod.js", "src/"],
  dependencies: { "hash-wasm": "^4.12.0" },
};

Deno.test("parseNpmSpecifier", async (t) => {
  const cases: [string, string, string, string][] = [
    ["npm:hash-wasm@^4.12.0", "hash-wasm", "^4.12.0", ""],
    ["npm:hash-wasm", "hash-wasm", "*", ""],
    ["npm:@scope/name@1.0.0/sub/path", "@scope/name", "1.0.0", "/sub/path"],
    ["npm:/@scope/name@2/", "@scope/name", "2", "/"],
  ];
  for (const [specifier, name, range, subpath] of cases) {
    await t.step(specifier, () => {
      const parsed = parseNpmSpecifier(specifier);
      assert.equal(parsed.name, name);
      assert.equal(parsed.range, range);
      assert.equal(parsed.subpath, subpath);
    });
  }
  await t.step("rejects other schemes", () => {
    assert.throws(() => parseNpmSpecifier("jsr:@std/path"), TypeError);
  });
});

Deno.test("createPackageJson from deno.json", () => {
  const pkg = createPackageJson(CONFIG, OPTIONS);
  assert.equal(pkg.name, "@stash-kv/client");
  assert.equal(pkg.version, "1.2.3");
  assert.equal(pkg.license, "MIT");
  assert.equal(pkg.type, "module");
  assert.equal(pkg.sideEffects, false);
  assert.equal(pkg.types, "./mod.d.ts");
  assert.deepEqual(pkg.engines, { node: ">=20" });
  assert.deepEqual(pkg.dependencies, { "hash-wasm": "^4.12.0" });
  assert.deepEqual(pkg.files, ["mod.js", "src/"]);
  assert.deepEqual(pkg.exports, {
    ".": { types: "./mod.d.ts", default: "./mod.js" },
    "./testing": { types: "./testing.d.ts", default: "./testing.js" },
  });
  assert.deepEqual(Object.keys(pkg.exports["."]!), ["types", "default"]);
});

Deno.test("createPackageJson rejects incomplete config", async (t) => {
  await t.step("no version", () => {
    const { version: _version, ...config } = CONFIG;
    assert.throws(() => createPackageJson(config, OPTIONS), /no version/);
  });
  await t.step("no license", () => {
    const { license: _license, ...config } = CONFIG;
    assert.throws(() => createPackageJson(config, OPTIONS), /no license/);
  });
  await t.step("no main export", () => {
    const config = { ...CONFIG, exports: { "./testing": "./testing.ts" } };
    assert.throws(() => createPackageJson(config, OPTIONS), /no "\." entry/);
  });
});

Deno.test("denoExports forms", async (t) => {
  await t.step("string export is the main entry", () => {
    assert.deepEqual(denoExports({ exports: "./mod.ts" }), { ".": "./mod.ts" });
  });
  await t.step("missing exports", () => {
    assert.throws(() => denoExports({}), /no exports/);
  });
  await t.step("target that is not a relative .ts file", () => {
    assert.throws(
      () => denoExports({ exports: { ".": "mod.js" } }),
      /not a relative \.ts file/,
    );
  });
});

Deno.test("checkExportsMatch drift", async (t) => {
  const matching = createPackageJson(CONFIG, OPTIONS).exports;
  await t.step("generated exports match", () => {
    assert.deepEqual(checkExportsMatch(CONFIG, matching), []);
  });
  await t.step("missing subpath", () => {
    const { "./testing": _testing, ...exports } = matching;
    assert.deepEqual(checkExportsMatch(CONFIG, exports), [
      'package.json exports lack "./testing"',
    ]);
  });
  await t.step("extra subpath", () => {
    const exports = { ...matching, "./extra": matching["."] };
    const problems = checkExportsMatch(CONFIG, exports);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /"\.\/extra", which deno\.json does not/);
  });
  await t.step("wrong target", () => {
    const exports = {
      ...matching,
      ".": { types: "./mod.d.ts", default: "./index.js" },
    };
    const problems = checkExportsMatch(CONFIG, exports);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /maps "default" to "\.\/index\.js"/);
    assert.match(problems[0]!, /\.\/mod\.ts builds to "\.\/mod\.js"/);
  });
  await t.step("conditions out of order", () => {
    const exports = {
      ...matching,
      ".": { default: "./mod.js", types: "./mod.d.ts" },
    };
    const problems = checkExportsMatch(CONFIG, exports);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /conditions \[default, types\]/);
  });
  await t.step("string target", () => {
    const exports = { ...matching, ".": "./mod.js" };
    const problems = checkExportsMatch(CONFIG, exports);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /export "\." is "\.\/mod\.js"/);
  });
  await t.step("deno.json export added later", () => {
    const config = {
      ...CONFIG,
      exports: { ...CONFIG.exports as object, "./zk": "./zk.ts" },
    };
    assert.deepEqual(checkExportsMatch(config, matching), [
      'package.json exports lack "./zk"',
    ]);
  });
});

Deno.test("npmDependencies from imports", async (t) => {
  await t.step("only imported packages", () => {
    assert.deepEqual(
      npmDependencies(CONFIG, ["hash-wasm", "./a.ts", "node:fs"]),
      { "hash-wasm": "^4.12.0" },
    );
  });
  await t.step("npm: specifier and prefix key", () => {
    assert.deepEqual(
      npmDependencies(CONFIG, ["npm:zod@^3", "@scope/lib/sub"]),
      { "@scope/lib": "2", "zod": "^3" },
    );
  });
  await t.step("non-npm target is rejected", () => {
    assert.throws(() => npmDependencies(CONFIG, ["remote"]), /not to an npm/);
  });
  await t.step("unmapped bare specifier is rejected", () => {
    assert.throws(() => npmDependencies(CONFIG, ["left-pad"]), /left-pad/);
  });
  await t.step("two ranges for one package", () => {
    assert.throws(
      () => npmDependencies(CONFIG, ["hash-wasm", "npm:hash-wasm@^5"]),
      /two ranges/,
    );
  });
});

Deno.test("mapSpecifier", async (t) => {
  const imports = CONFIG.imports!;
  const cases: [string, string][] = [
    ["./errors.ts", "./errors.js"],
    ["../errors.ts", "../errors.js"],
    ["./data.json", "./data.json"],
    ["node:fs", "node:fs"],
    ["hash-wasm", "hash-wasm"],
    ["npm:hash-wasm@^4.12.0", "hash-wasm"],
    ["npm:@scope/name@1/sub.js", "@scope/name/sub.js"],
    ["@scope/lib/deep/file.js", "@scope/lib/deep/file.js"],
  ];
  for (const [specifier, expected] of cases) {
    await t.step(specifier, () => {
      assert.equal(mapSpecifier(specifier, imports), expected);
    });
  }
  await t.step("jsr import map target is rejected", () => {
    assert.throws(() => mapSpecifier("remote", imports), /not an npm/);
  });
  await t.step("URL import is rejected", () => {
    assert.throws(
      () => mapSpecifier("https://example.test/mod.ts", imports),
      /handles only relative/,
    );
  });
});

Deno.test("resolveImportMap prefers the longest prefix", () => {
  const imports = { "a/": "npm:/a@1/", "a/b/": "npm:/ab@2/" };
  assert.equal(resolveImportMap("a/b/c", imports), "npm:/ab@2/c");
  assert.equal(resolveImportMap("a/c", imports), "npm:/a@1/c");
  assert.equal(resolveImportMap("z", imports), undefined);
});

Deno.test("findUrlModules", async (t) => {
  await t.step("literal .ts path", () => {
    const source = 'new Worker(new URL("./kdf_worker.ts", import.meta.url));';
    assert.deepEqual(findUrlModules(source), ["./kdf_worker"]);
  });
  await t.step("computed extension", () => {
    const source = "new URL(`./kdf_worker${extension}`, import.meta.url)";
    assert.deepEqual(findUrlModules(source), ["./kdf_worker"]);
  });
  await t.step("emitted .js path", () => {
    const source = "new URL('../w/run.js', import.meta.url)";
    assert.deepEqual(findUrlModules(source), ["../w/run.js"]);
  });
  await t.step("other URLs are ignored", () => {
    const source = 'new URL("/api", base); new URL(import.meta.url);';
    assert.deepEqual(findUrlModules(source), []);
  });
});

Deno.test("extractDenoNamespace keeps namespace blocks only", () => {
  const types = [
    "interface Window {}",
    "declare namespace Deno {",
    "  export function serve(): void;",
    "}",
    "declare var fetch: unknown;",
    "declare namespace Deno {",
    "  export const pid: number;",
    "}",
  ].join("\n");
  const extracted = extractDenoNamespace(types);
  assert.match(extracted, /serve\(\): void/);
  assert.match(extracted, /pid: number/);
  assert.doesNotMatch(extracted, /Window|fetch/);
});

Deno.test("formatSize units", () => {
  assert.equal(formatSize(999), "999 B");
  assert.equal(formatSize(12_345), "12.3 kB");
  assert.equal(formatSize(2_500_000), "2.50 MB");
});
