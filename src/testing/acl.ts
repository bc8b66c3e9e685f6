/**
 * Token ACLs of the in-process Stash server: credentials, key patterns and
 * the secrets rule.
 *
 * @module
 */

import { isSecretKey } from "./store.ts";

/**
 * Access granted by a pattern: read (`r`, `read`), write (`w`, `write`) or
 * both (`rw`, `readwrite`, `read-write`).
 */
export type Access =
  | "r"
  | "read"
  | "w"
  | "write"
  | "rw"
  | "readwrite"
  | "read-write";

/** One token of the server's auth file. */
export interface TokenConfig {
  /** The token. The value `*` makes this entry the ACL of anonymous requests. */
  token: string;
  /**
   * Key pattern to access. A pattern is `*` (every key), a string prefix
   * ending in `*` (`app/*`, `app*`), or an exact key.
   */
  permissions: Record<string, Access>;
  /**
   * Whether the token may use admin endpoints (the audit log, which this
   * server does not implement).
   *
   * @default {false}
   */
  admin?: boolean;
}

/** The operation a request performs on a key. */
export type Operation = "read" | "write";

/** Version-dependent ACL rules. */
export interface AclRules {
  /** Whether write access also grants read (newest servers). */
  writeImpliesRead: boolean;
  /** Whether only secrets-path patterns grant secret keys (newest servers). */
  secretsRule: boolean;
}

interface Rule {
  pattern: string;
  read: boolean;
  write: boolean;
  secretsPattern: boolean;
}

const PUBLIC_TOKEN = "*";

/** Compiles an access string into read and write flags. */
function parseAccess(access: string): { read: boolean; write: boolean } {
  switch (access) {
    case "r":
    case "read":
      return { read: true, write: false };
    case "w":
    case "write":
      return { read: false, write: true };
    case "rw":
    case "readwrite":
    case "read-write":
      return { read: true, write: true };
    default:
      throw new TypeError(
        `Invalid access ${JSON.stringify(access)}: expected r, w or rw`,
      );
  }
}

/** Compiles permissions into rules, longest pattern first. */
function compileRules(permissions: Record<string, Access>): Rule[] {
  const rules = Object.entries(permissions).map(([pattern, access]) => ({
    pattern,
    ...parseAccess(access),
    secretsPattern: isSecretKey(pattern.replace(/\*$/, "")),
  }));
  return rules.sort((a, b) => b.pattern.length - a.pattern.length);
}

function matches(pattern: string, key: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith("*")) return key.startsWith(pattern.slice(0, -1));
  return pattern === key;
}

/** The tokens of one server and the checks made with them. */
export class Acl {
  #rules: AclRules;
  #tokens = new Map<string, Rule[]>();
  #public: Rule[] | undefined;
  #enabled = false;

  constructor(tokens: readonly TokenConfig[] | undefined, rules: AclRules) {
    this.#rules = rules;
    this.setTokens(tokens);
  }

  /** Whether auth is on; without tokens every request passes. */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** Replaces the tokens, as a hot reload of the auth file does. */
  setTokens(tokens: readonly TokenConfig[] | undefined): void {
    this.#enabled = tokens !== undefined;
    this.#tokens.clear();
    this.#public = undefined;
    for (const config of tokens ?? []) {
      const rules = compileRules(config.permissions);
      if (config.token === PUBLIC_TOKEN) this.#public = rules;
      else this.#tokens.set(config.token, rules);
    }
  }

  /** Reports whether `token` is a configured token. */
  isValidToken(token: string | undefined): boolean {
    return token !== undefined && this.#tokens.has(token);
  }

  /**
   * Reports whether a request with `token` has a principal: a valid token,
   * or no valid token but a public ACL.
   */
  hasPrincipal(token: string | undefined): boolean {
    return !this.#enabled || this.isValidToken(token) ||
      this.#public !== undefined;
  }

  /**
   * Reports whether `token` (or the public ACL) grants `operation` on `key`.
   * Always true with auth off.
   */
  allows(
    token: string | undefined,
    key: string,
    operation: Operation,
  ): boolean {
    if (!this.#enabled) return true;
    if (this.#public && this.#grants(this.#public, key, operation)) return true;
    const rules = token === undefined ? undefined : this.#tokens.get(token);
    return rules !== undefined && this.#grants(rules, key, operation);
  }

  #grants(rules: Rule[], key: string, operation: Operation): boolean {
    const secret = this.#rules.secretsRule && isSecretKey(key);
    for (const rule of rules) {
      if (secret && !rule.secretsPattern) continue;
      if (!matches(rule.pattern, key)) continue;
      // The first (longest) matching pattern decides, even when it denies.
      if (operation === "write") return rule.write;
      return rule.read || (this.#rules.writeImpliesRead && rule.write);
    }
    return false;
  }
}

/**
 * Extracts the request's token: newest servers take `X-Auth-Token` first,
 * then `Authorization: Bearer <token>` (scheme case-sensitive); v0.13.0 only
 * the latter.
 */
export function extractToken(
  headers: Headers,
  acceptXAuthToken: boolean,
): string | undefined {
  if (acceptXAuthToken) {
    const direct = headers.get("x-auth-token");
    if (direct !== null && direct !== "") return direct;
  }
  const authorization = headers.get("authorization");
  if (authorization === null || !authorization.startsWith("Bearer ")) {
    return undefined;
  }
  const token = authorization.slice("Bearer ".length);
  return token === "" ? undefined : token;
}
