// Test helper: a response body that a test feeds chunk by chunk.

const encoder = new TextEncoder();

/** A response body whose chunks the test sends one by one. */
export class ControlledStream {
  readonly stream: ReadableStream<Uint8Array>;
  cancelled = false;
  #controller!: ReadableStreamDefaultController<Uint8Array>;

  constructor() {
    this.stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      cancel: () => {
        this.cancelled = true;
      },
    });
  }

  send(text: string | Uint8Array): void {
    this.#controller.enqueue(
      typeof text === "string" ? encoder.encode(text) : text,
    );
  }

  end(): void {
    this.#controller.close();
  }

  fail(error: Error): void {
    this.#controller.error(error);
  }

  response(): Response {
    return new Response(this.stream, {
      headers: { "content-type": "text/event-stream" },
    });
  }
}
