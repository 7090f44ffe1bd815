import { setFlagsFromString } from 'node:v8';

/**
 * V8's old generation on a gateway. By default V8 lets the old generation grow by a factor it picks
 * from GC and mutator speed, up to 4x what survived the last full GC; at thousands of readings a
 * second that is ~60 MB of promoted garbage over ~30 MB live, i.e. ~210 MiB RSS. 1.5x keeps it
 * near what is live (docs/performance.md, "Heap sized for a gateway": with 8 MB semi-spaces RSS
 * peak 158 MiB at the throughput of V8's defaults; 1.2x with 4 MB semi-spaces gave 148 MiB but
 * ~25 % less throughput).
 */
export const HEAP_GROWING_PERCENT = 50;

/**
 * Node options the agent is installed with: packaging/systemd/edge-agent.service (NODE_OPTIONS),
 * Dockerfile.arm64 (ENTRYPOINT) and `npm run bench`. The young generation's semi-spaces are fixed
 * when V8 starts, so this cannot be set from inside like the growing factor: V8 sizes them from the
 * machine's memory (16 MB each on a 64-bit board with 4 GB or more), and a pipeline whose readings
 * live ~1-20 ms between decode and commit needs far less (measured: 32 -> 16 MB of young generation).
 */
export const AGENT_NODE_OPTIONS: readonly string[] = ['--max-semi-space-size=8'];

/**
 * Environment the agent is installed with, beside AGENT_NODE_OPTIONS (the same three places). glibc
 * gives a thread that allocates while another holds the main arena an arena of its own, up to 8 per
 * core, and each keeps the memory freed into it: onnxruntime's, libuv's and V8's helper threads
 * (13 threads in a running agent) held ~5-10 MiB of RSS that way (RSS peak of 50,000 readings at
 * the bench's rate: 159.9-161.6 MiB in 3 runs with glibc's default, 149.5-156.8 in 4 with 2). Two
 * arenas keep contention low with one thread that matters (the main one). glibc reads it when the
 * process starts, so it cannot be set from inside; other C libraries (musl) ignore it.
 */
export const AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * Applies HEAP_GROWING_PERCENT to this process (the growing factor is read at every full GC, so it
 * can be set after V8 started). An operator's own --heap-growing-percent on the node command line wins.
 */
export function tuneHeapForGateway(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a))) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
