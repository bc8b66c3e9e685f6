/**
 * Measures peak memory and event-loop stalls of 50 concurrent cold reads
 * (50 values with distinct salts, so 50 Argon2id derivations of 64 MiB)
 * with and without Web Workers. Run with `deno run -A bench/kdf_memory.ts`.
 *
 * Each configuration runs in its own `deno run` subprocess, so one run's
 * garbage does not inflate the next one's peak. RSS is sampled every 5 ms
 * with `Deno.memoryUsage().rss`; workers are threads of the same process,
 * so their memory is included. The stall is the maximum lateness of a 5 ms
 * interval timer. Results are in bench/README.md.
 *
 * @module
 */

import { ZkCodec, type ZkOptions } from "../src/zk/codec.ts";

const PASSPHRASE = "kdf-memory-bench-passphrase";
const VALUES = 50;
const SAMPLE_INTERVAL_MS = 5;

interface RunResult {
  label: string;
  seconds: number;
  peakRssMb: number;
  maxStallMs: number;
}

const CONFIGURATIONS: [string, ZkOptions][] = [
  ["worker per derivation, 2 at once", { worker: true }],
  ["worker per derivation, 1 at once", {
    worker: true,
    maxConcurrentDerivations: 1,
  }],
  ["calling thread, 2 at once", { worker: false }],
];

async function measure(
  label: string,
  options: ZkOptions,
  envelopes: string[],
): Promise<RunResult> {
  let peak = Deno.memoryUsage().rss;
  let maxStall = 0;
  let last = performance.now();
  const sample = (): void => {
    const now = performance.now();
    maxStall = Math.max(maxStall, now - last - SAMPLE_INTERVAL_MS);
    last = now;
    peak = Math.max(peak, Deno.memoryUsage().rss);
  };
  const timer = setInterval(sample, SAMPLE_INTERVAL_MS);
  const codec = new ZkCodec(PASSPHRASE, options);
  const start = performance.now();
  try {
    await Promise.all(envelopes.map((envelope) => codec.decrypt(envelope)));
  } finally {
    codec.close();
  }
  const seconds = (performance.now() - start) / 1000;
  sample();
  clearInterval(timer);
  return { label, seconds, peakRssMb: peak / 1e6, maxStallMs: maxStall };
}

async function writeEnvelopes(path: string): Promise<void> {
  const codec = new ZkCodec(PASSPHRASE, { saltPerValue: true });
  const envelopes: string[] = [];
  try {
    for (let i = 0; i < VALUES; i++) {
      const bytes = await codec.encrypt(new TextEncoder().encode(`value ${i}`));
      envelopes.push(new TextDecoder().decode(bytes));
    }
  } finally {
    codec.close();
  }
  await Deno.writeTextFile(path, JSON.stringify(envelopes));
}

async function runChild(index: number, path: string): Promise<RunResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", import.meta.filename ?? "", String(index), path],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`Run ${index} failed`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

async function main(): Promise<void> {
  const [indexArgument, path] = Deno.args;
  if (indexArgument !== undefined && path !== undefined) {
    const [label, options] = CONFIGURATIONS[Number(indexArgument)]!;
    const envelopes = JSON.parse(await Deno.readTextFile(path));
    // deno-lint-ignore no-console
    console.log(JSON.stringify(await measure(label, options, envelopes)));
    return;
  }
  const file = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await writeEnvelopes(file);
    for (let index = 0; index < CONFIGURATIONS.length; index++) {
      const result = await runChild(index, file);
      // deno-lint-ignore no-console
      console.log(
        `${result.label}: ${VALUES} cold reads in ${
          result.seconds.toFixed(1)
        } s, peak RSS ${result.peakRssMb.toFixed(0)} MB, max event-loop ` +
          `stall ${result.maxStallMs.toFixed(0)} ms`,
      );
    }
  } finally {
    await Deno.remove(file);
  }
}

await main();
