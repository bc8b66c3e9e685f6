/**
 * Per-client token buckets of the in-process Stash server, with the headers
 * the real server's rate limiter sends.
 *
 * @module
 */

/** Rate limit settings. */
export interface RateLimitOptions {
  /** Tokens added per second, and the `Ratelimit-Limit` header value. */
  rate: number;
  /**
   * Bucket size: requests allowed at once from a full bucket.
   *
   * @default {rate}
   */
  burst?: number;
}

/** The outcome of one request's check. */
export interface RateDecision {
  /** Whether the request may proceed. */
  allowed: boolean;
  /** Headers to add to the response, allowed or not. */
  headers: Record<string, string>;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

// Header values reported when limiting is off: a default 100/s limiter that
// never runs low, so clients that slow down near zero are never throttled.
const UNLIMITED_RATE = 100;

/** Token buckets keyed by client address. */
export class RateLimiter {
  #rate: number;
  #burst: number;
  #enabled: boolean;
  #now: () => number;
  #buckets = new Map<string, Bucket>();

  constructor(options: RateLimitOptions | false, now: () => number) {
    this.#enabled = options !== false;
    this.#rate = options === false ? UNLIMITED_RATE : options.rate;
    this.#burst = options === false
      ? UNLIMITED_RATE
      : options.burst ?? this.#rate;
    this.#now = now;
    if (!(this.#rate > 0) || !(this.#burst >= 1)) {
      throw new RangeError(
        `Invalid rate limit ${this.#rate}/s, burst ${this.#burst}: ` +
          "rate must be above 0 and burst at least 1",
      );
    }
  }

  /** Takes one token from `client`'s bucket. */
  take(client: string): RateDecision {
    if (!this.#enabled) {
      return { allowed: true, headers: this.#headers(client, this.#rate - 1) };
    }
    const bucket = this.#refill(client);
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    const remaining = allowed ? Math.floor(bucket.tokens) : 0;
    return { allowed, headers: this.#headers(client, remaining) };
  }

  /** Forgets every bucket. */
  reset(): void {
    this.#buckets.clear();
  }

  #refill(client: string): Bucket {
    const now = this.#now();
    const bucket = this.#buckets.get(client) ??
      { tokens: this.#burst, updatedMs: now };
    const elapsedSeconds = Math.max(0, now - bucket.updatedMs) / 1000;
    bucket.tokens = Math.min(
      this.#burst,
      bucket.tokens + elapsedSeconds * this.#rate,
    );
    bucket.updatedMs = now;
    this.#buckets.set(client, bucket);
    return bucket;
  }

  #headers(client: string, remaining: number): Record<string, string> {
    return {
      "X-Rate-Limit-Limit": this.#rate.toFixed(2),
      "X-Rate-Limit-Duration": "1",
      "X-Rate-Limit-Request-Remote-Addr": client,
      "Ratelimit-Limit": String(Math.floor(this.#rate)),
      "Ratelimit-Remaining": String(remaining),
      "Ratelimit-Reset": "1",
    };
  }
}

/**
 * Returns the client address for rate limiting: the first `X-Forwarded-For`
 * entry, else `X-Real-IP`, else the socket's address.
 */
export function clientAddress(headers: Headers, remoteAddr: string): string {
  const forwarded = headers.get("x-forwarded-for")?.split(",")[0]?.trim();
  if (forwarded) return forwarded;
  const real = headers.get("x-real-ip")?.trim();
  return real ? real : remoteAddr;
}
