/**
 * The part of the `Deno` namespace that the tests use, on top of Node.js,
 * so that the test files run unchanged under `node --test` against the npm
 * package. scripts/test_node.ts starts every compiled test file with
 * `import { Deno } from "./node/deno_shim.mjs"`. The binding is local to
 * the test modules, so the library under test finds no `Deno` global, as
 * in a real Node.js program.
 *
 * `Deno.test` and `t.step` map to `node:test` tests and subtests. Reading
 * a Deno member that this file does not provide, such as `Deno.serve`,
 * throws a {@link DenoOnlyError}, and the test or step that reached it is
 * reported as skipped with the member's name. So is one that gets one of
 * the library errors in `MISSING_RUNTIME_API`.
 *
 * @module
 */

import { readFile, stat } from "node:fs/promises";
import process from "node:process";
import { test as nodeTest } from "node:test";
import { pathToFileURL } from "node:url";
import { inspect } from "node:util";

/** Raised on access to a Deno API that this shim does not provide. */
export class DenoOnlyError extends Error {
  /** @param {string} api The member that was read, such as `Deno.serve`. */
  constructor(api) {
    super(`${api} is not available under Node.js`);
    this.name = "DenoOnlyError";
    this.api = api;
  }
}

// Library errors that report a runtime API Node.js lacks: StashServer.listen()
// without Deno.serve, and a ZkCodec with `worker: true` without a global
// Worker. A test that reaches one is skipped like one that reads Deno.serve.
const MISSING_RUNTIME_API = [
  /\brequires Deno\.\w+, which this runtime lacks\b/,
  /\brequires a Web Worker \(zk option worker: true\), but none could run\b/,
];

/** Tells whether an error, or one of its causes, comes from a missing API. */
function isDenoOnly(error) {
  for (let cause = error, depth = 0; depth < 10; depth++) {
    if (cause instanceof DenoOnlyError) return true;
    if (typeof cause !== "object" || cause === null) return false;
    // Node.js has no global Worker; Deno, Bun and browsers have one.
    if (
      cause instanceof ReferenceError &&
      /^Worker is not defined$/.test(cause.message)
    ) {
      return true;
    }
    const message = String(cause.message);
    if (MISSING_RUNTIME_API.some((pattern) => pattern.test(message))) {
      return true;
    }
    cause = cause.cause;
  }
  return false;
}

/**
 * Normalizes the call forms of `Deno.test` and `t.step`: `(name, fn)`,
 * `(name, options, fn)`, `(definition)`, `(options, fn)` and `(fn)`.
 */
function parseDefinition(args, caller) {
  const [first, second, third] = args;
  let definition;
  if (typeof first === "string") {
    if (typeof second === "function") {
      definition = { name: first, fn: second };
    } else if (typeof third === "function") {
      definition = { ...second, name: first, fn: third };
    }
  } else if (typeof first === "function") {
    definition = { name: first.name, fn: first };
  } else if (typeof first === "object" && first !== null) {
    definition = typeof second === "function"
      ? { ...first, name: first.name ?? second.name, fn: second }
      : { ...first };
  }
  if (definition === undefined || typeof definition.fn !== "function") {
    throw new TypeError(`${caller} requires a test function`);
  }
  // Deno rejects an empty test name but accepts an empty step name.
  if (
    typeof definition.name !== "string" ||
    (caller === "Deno.test" && definition.name === "")
  ) {
    throw new TypeError(`${caller} requires a non-empty test name`);
  }
  return definition;
}

// Node.js has no permission sandbox to grant or revoke per test, so a test
// that sets permissions would run with different rights than it expects.
function skipReason(definition) {
  if (definition.ignore === true) return true;
  const { permissions } = definition;
  if (permissions !== undefined && permissions !== "inherit") {
    return "sets Deno permissions, which Node.js cannot apply per test";
  }
  return false;
}

async function runBody(nodeContext, fn, denoContext) {
  try {
    await fn(denoContext);
  } catch (error) {
    if (!isDenoOnly(error)) throw error;
    nodeContext.skip(`needs a runtime API Node.js lacks: ${error.message}`);
  }
}

const ORIGIN = process.argv[1] === undefined
  ? "node"
  : pathToFileURL(process.argv[1]).href;

/** Creates the `Deno.TestContext` passed to a test or step function. */
function createContext(nodeContext, name, parent) {
  const context = {
    name,
    origin: ORIGIN,
    parent,
    async step(...args) {
      const definition = parseDefinition(args, "t.step");
      const skip = skipReason(definition);
      let passed = true;
      await nodeContext.test(definition.name, { skip }, async (child) => {
        try {
          await runBody(
            child,
            definition.fn,
            createContext(child, definition.name, context),
          );
        } catch (error) {
          passed = false;
          throw error;
        }
      });
      return skip === false && passed;
    },
  };
  return context;
}

function registerTest(args, extra) {
  const definition = { ...parseDefinition(args, "Deno.test"), ...extra };
  const options = { skip: skipReason(definition) };
  // node:test warns about any `only` option unless run with --test-only.
  if (definition.only === true) options.only = true;
  nodeTest(definition.name, options, async (nodeContext) => {
    await runBody(
      nodeContext,
      definition.fn,
      createContext(nodeContext, definition.name, undefined),
    );
  });
}

function test(...args) {
  registerTest(args, {});
}
test.ignore = (...args) => registerTest(args, { ignore: true });
test.only = (...args) => registerTest(args, { only: true });

class NotFound extends Error {
  name = "NotFound";
}
class PermissionDenied extends Error {
  name = "PermissionDenied";
}
class AlreadyExists extends Error {
  name = "AlreadyExists";
}

// Deno's file functions raise Deno.errors classes, not Node.js error codes.
async function withDenoErrors(operation) {
  try {
    return await operation();
  } catch (error) {
    const options = { cause: error };
    switch (error?.code) {
      case "ENOENT":
        throw new NotFound(error.message, options);
      case "EACCES":
      case "EPERM":
        throw new PermissionDenied(error.message, options);
      case "EEXIST":
        throw new AlreadyExists(error.message, options);
      default:
        throw error;
    }
  }
}

function toFileInfo(stats) {
  return {
    isFile: stats.isFile(),
    isDirectory: stats.isDirectory(),
    isSymlink: stats.isSymbolicLink(),
    size: stats.size,
    mtime: stats.mtime,
    atime: stats.atime,
    birthtime: stats.birthtime,
  };
}

const provided = {
  test,
  readTextFile: (path) => withDenoErrors(() => readFile(path, "utf8")),
  readFile: (path) =>
    withDenoErrors(async () => new Uint8Array(await readFile(path))),
  stat: (path) => withDenoErrors(async () => toFileInfo(await stat(path))),
  env: {
    get: (key) => process.env[key],
    has: (key) => Object.hasOwn(process.env, key),
    toObject: () => ({ ...process.env }),
  },
  errors: { NotFound, PermissionDenied, AlreadyExists },
  inspect: (value, options) => inspect(value, options),
  cwd: () => process.cwd(),
  args: process.argv.slice(2),
  build: {
    os: process.platform === "win32" ? "windows" : process.platform,
    arch: process.arch === "arm64" ? "aarch64" : "x86_64",
  },
  noColor: process.env.NO_COLOR !== undefined,
};

/** The shim of the `Deno` namespace; unknown members throw on access. */
export const Deno = new Proxy(provided, {
  get(target, property) {
    if (typeof property === "symbol" || Object.hasOwn(target, property)) {
      return target[property];
    }
    throw new DenoOnlyError(`Deno.${property}`);
  },
});

installUnhandledRejectionEvent();

/**
 * Adds the web `unhandledrejection` event that Deno dispatches on
 * `globalThis`, on top of Node.js's `unhandledRejection` process event.
 * A rejection that no listener cancels with `preventDefault()` is thrown
 * again, which fails the test file as it would without listeners.
 */
function installUnhandledRejectionEvent() {
  if (typeof globalThis.addEventListener === "function") return;
  const listeners = new Set();
  const onRejection = (reason, promise) => {
    let prevented = false;
    const event = {
      type: "unhandledrejection",
      reason,
      promise,
      preventDefault() {
        prevented = true;
      },
    };
    for (const listener of [...listeners]) listener(event);
    if (!prevented) throw reason;
  };
  globalThis.addEventListener = (type, listener) => {
    if (type !== "unhandledrejection") {
      throw new DenoOnlyError(`globalThis.addEventListener("${type}")`);
    }
    if (listeners.size === 0) process.on("unhandledRejection", onRejection);
    listeners.add(listener);
  };
  globalThis.removeEventListener = (type, listener) => {
    if (type !== "unhandledrejection") return;
    listeners.delete(listener);
    if (listeners.size === 0) process.off("unhandledRejection", onRejection);
  };
}
