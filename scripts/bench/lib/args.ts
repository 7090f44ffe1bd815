/** `--NAME N` from the command line as a positive integer, or `fallback` when absent. */
export function intArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got "${process.argv[i + 1]}"`);
  return v;
}
