/**
 * A counting semaphore for bounding concurrent work.
 *
 * @module
 */

/** Limits how many tasks run at once; the rest wait in arrival order. */
export class Semaphore {
  #available: number;
  #waiting: (() => void)[] = [];

  /**
   * Creates a semaphore with `permits` slots.
   *
   * @param permits Number of tasks allowed to run at once, at least 1.
   */
  constructor(permits: number) {
    this.#available = permits;
  }

  /**
   * Runs `task` once a slot is free and frees the slot when it settles.
   *
   * @param task The work to run.
   * @returns The task's result.
   */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.#acquire();
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  #acquire(): Promise<void> {
    if (this.#available > 0) {
      this.#available--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next === undefined) this.#available++;
    else next();
  }
}
