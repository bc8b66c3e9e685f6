/**
 * A bounded first-in first-out queue with an asynchronous `next()`, used
 * between a producer whose `push()` returns at once (the socket reader) and
 * a consumer that may be slow (the application's `for await` loop).
 *
 * @module
 */

interface Waiter<T> {
  resolve(result: IteratorResult<T, undefined>): void;
  reject(error: unknown): void;
}

/** A bounded queue of items, ended normally or with an error. */
export class BoundedQueue<T> {
  readonly #capacity: number;
  readonly #items: (T | undefined)[];
  #head = 0;
  #length = 0;
  #waiters: Waiter<T>[] = [];
  #ended = false;
  #failure: { error: unknown } | undefined;

  /** Creates an empty queue of at most `capacity` items. */
  constructor(capacity: number) {
    this.#capacity = capacity;
    this.#items = new Array<T | undefined>(capacity);
  }

  /** Number of items waiting for the consumer. */
  get length(): number {
    return this.#length;
  }

  /** Whether the queue contains `capacity` items. */
  get full(): boolean {
    return this.#length === this.#capacity;
  }

  /** Whether `end()` or `fail()` was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Adds an item, handing it straight to a waiting consumer if there is one.
   * The caller checks `full` first; a push to a full queue is ignored.
   */
  push(item: T): void {
    if (this.#ended) return;
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter.resolve({ done: false, value: item });
      return;
    }
    if (this.full) return;
    this.#items[(this.#head + this.#length) % this.#capacity] = item;
    this.#length++;
  }

  /** Removes the oldest item, to make room under a drop-oldest policy. */
  dropOldest(): void {
    if (this.#length === 0) return;
    this.#take();
  }

  /** Ends the queue now: queued items are discarded and `next()` is done. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#head = 0;
    this.#length = 0;
    this.#items.fill(undefined);
    for (const waiter of this.#waiters.splice(0)) {
      waiter.resolve({ done: true, value: undefined });
    }
  }

  /**
   * Ends the queue with an error: queued items are still delivered, then
   * one `next()` rejects with `error`, and later calls are done.
   */
  fail(error: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    // Waiters exist only while the queue is empty, so they get the error now.
    const waiters = this.#waiters.splice(0);
    for (const waiter of waiters) waiter.reject(error);
    if (waiters.length === 0) this.#failure = { error };
  }

  /** Returns the next item, waiting for one while the queue is open. */
  next(): Promise<IteratorResult<T, undefined>> {
    if (this.#length > 0) {
      return Promise.resolve({ done: false, value: this.#take() });
    }
    if (this.#failure !== undefined) {
      const { error } = this.#failure;
      this.#failure = undefined;
      return Promise.reject(error);
    }
    if (this.#ended) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
    });
  }

  #take(): T {
    const item = this.#items[this.#head] as T;
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#capacity;
    this.#length--;
    return item;
  }
}
