/**
 * Subscriptions and watches of one client: subscription paths, the
 * connection through the client's transport, and the defaults every
 * subscription inherits.
 *
 * @module
 */

import { redactSecrets } from "./errors.ts";
import {
  encodeKey,
  hasPingSuffix,
  type KeyEncoding,
  normalizeKey,
  validateKey,
  validatePrefix,
} from "./keys.ts";
import { checkCallOptions, type WatchKeyOptions } from "./options.ts";
import type { SleepFunction } from "./retry.ts";
import {
  checkSubscribeOptions,
  type ReconnectOptions,
  type SubscribeOptions,
  Subscription,
  type SubscriptionHooks,
  type SubscriptionTarget,
} from "./sse/subscription.ts";
import { type KeyRead, Watch } from "./sse/watch.ts";
import type { Transport } from "./transport.ts";

/** Settings of {@link Subscriptions}, taken from the client. */
export interface SubscriptionsInit {
  /** The client's transport; closing it ends every subscription. */
  transport: Transport;
  /** The client's key encoding, for subscription paths. */
  keyEncoding: KeyEncoding;
  /** Options every subscription inherits. */
  defaults: SubscribeOptions;
  /** Reconnection delays of every subscription. */
  reconnect?: ReconnectOptions;
  /** Strings removed from refused responses: the token and passphrase. */
  secrets: readonly string[];
  /** Injected sleep, shared with the client's retries. */
  sleep?: SleepFunction;
  /** Injected randomness for jitter. */
  random?: () => number;
}

/**
 * Creates the subscriptions and watches of one client. Its options are
 * validated on construction, so that bad defaults fail when the client is
 * built.
 */
export class Subscriptions {
  readonly #init: SubscriptionsInit;

  /** Checks the defaults and the reconnection delays. */
  constructor(init: SubscriptionsInit) {
    checkSubscribeOptions(init.defaults, init.reconnect);
    this.#init = init;
  }

  /**
   * Subscribes to one key. The exact path of a key ending in a `ping`
   * segment would hit the server's health check, so such keys subscribe to
   * their parent, and the subscription drops the other keys' events.
   */
  forKey(key: string, options: SubscribeOptions | undefined): Subscription {
    validateKey(key);
    const stored = normalizeKey(key);
    const encoding = this.#init.keyEncoding;
    let path = `/kv/subscribe/${encodeKey(stored, encoding)}`;
    if (hasPingSuffix(stored)) {
      const slash = stored.lastIndexOf("/");
      path = slash < 0
        ? "/kv/subscribe/*"
        : `/kv/subscribe/${encodeKey(stored.slice(0, slash), encoding)}/*`;
    }
    return this.#open(path, { kind: "key", key: stored }, options);
  }

  /** Subscribes to every key below `prefix`, segment-aligned. */
  forPrefix(
    prefix: string,
    options: SubscribeOptions | undefined,
  ): Subscription {
    const stored = normalizeKey(validatePrefix(prefix));
    if (stored === "") {
      throw new TypeError(
        `Invalid prefix ${
          JSON.stringify(prefix)
        }: it is empty; use subscribeAll() to receive every key`,
      );
    }
    const path = `/kv/subscribe/${encodeKey(stored, this.#init.keyEncoding)}/*`;
    return this.#open(path, { kind: "prefix", prefix: stored }, options);
  }

  /** Subscribes to every key the token can read. */
  forAll(options: SubscribeOptions | undefined): Subscription {
    return this.#open("/kv/subscribe/*", { kind: "all" }, options);
  }

  /** Watches the value of a key, reading it with `read`. */
  watch(
    key: string,
    options: WatchKeyOptions | undefined,
    read: (signal: AbortSignal) => Promise<KeyRead>,
  ): Watch {
    validateKey(key);
    const { subscription, ...watchOptions } = checkCallOptions(options) ?? {};
    const { reconnect, sleep, random } = this.#init;
    return new Watch({
      ...watchOptions,
      signal: this.#lifetimeSignal(watchOptions.signal),
      key: normalizeKey(key),
      subscribe: (hooks) =>
        this.forKey(key, chainHooks(subscription ?? {}, hooks)),
      read,
      ...(reconnect === undefined ? {} : { readRetry: reconnect }),
      ...(sleep === undefined ? {} : { sleep }),
      ...(random === undefined ? {} : { random }),
    });
  }

  #lifetimeSignal(signal: AbortSignal | undefined): AbortSignal {
    const closed = this.#init.transport.closedSignal;
    return signal === undefined ? closed : AbortSignal.any([closed, signal]);
  }

  #open(
    path: string,
    target: SubscriptionTarget,
    options: SubscribeOptions | undefined,
  ): Subscription {
    checkCallOptions(options);
    const { transport, defaults, reconnect, sleep, random } = this.#init;
    const merged: SubscribeOptions = { ...defaults, ...options };
    return new Subscription({
      ...merged,
      signal: this.#lifetimeSignal(merged.signal),
      path,
      target,
      connect: async (signal, lastEventId) =>
        await this.#redact(
          await transport.open({
            method: "GET",
            path,
            signal,
            headers: {
              accept: "text/event-stream",
              ...(lastEventId === undefined
                ? {}
                : { "last-event-id": lastEventId }),
            },
            ...(target.kind === "key" ? { key: target.key } : {}),
          }),
        ),
      ...(reconnect === undefined ? {} : { reconnect }),
      ...(sleep === undefined ? {} : { sleep }),
      ...(random === undefined ? {} : { random }),
    });
  }

  /**
   * Returns a refused subscription response with the token and passphrase
   * removed from its body, so that the subscription's error cannot show
   * them. Successful responses, event streams included, pass unchanged.
   */
  async #redact(response: Response): Promise<Response> {
    const { secrets } = this.#init;
    if (response.ok || secrets.length === 0) return response;
    const text = await response.text();
    return new Response(redactSecrets(text, secrets), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  }
}

/**
 * Merges subscription options with the hooks of a watch, so that both the
 * caller's hooks and the watch's run.
 */
function chainHooks(
  options: SubscribeOptions,
  hooks: SubscriptionHooks,
): SubscribeOptions {
  const merged: SubscribeOptions = { ...options };
  const names = ["onStateChange", "onOverflow", "onInvalidEvent"] as const;
  for (const name of names) {
    const first = options[name] as ((...args: unknown[]) => void) | undefined;
    const second = hooks[name] as ((...args: unknown[]) => void) | undefined;
    if (first === undefined || second === undefined) {
      if (second !== undefined) Object.assign(merged, { [name]: second });
      continue;
    }
    Object.assign(merged, {
      [name]: (...args: unknown[]) => {
        first(...args);
        second(...args);
      },
    });
  }
  return merged;
}
