/**
 * The plain-line form of a progress report (logs, CI, systemd journal), in a module of its own so
 * the running agent's backlog report does not load cli-progress (the terminal bar, progress.ts).
 */
/** What a long operation (replay, backlog drain, training) reports as it goes. */
export interface Progress {
  /** Sets the amount done so far (same unit as `total`). */
  update(done: number, extra?: string): void;
  /** Ends the report: the bar is completed, or a last plain line is written. */
  finish(extra?: string): void;
  /** The total grew (or shrank) while running, e.g. a backlog that is still being added to. */
  setTotal(total: number): void;
}

export interface ProgressOptions {
  /** What is being done, e.g. "replay pump.csv". */
  label: string;
  /** Total amount, when known (bytes, rows, batches...). */
  total?: number;
  unit: string;
  /** Where to write; stderr by default so stdout stays for the command's output. */
  stream?: NodeJS.WriteStream;
  /** Seconds between plain lines when the stream is not a terminal. */
  lineIntervalS?: number;
  /** Forces the plain-line form (tests, --no-progress); default: plain unless the stream is a TTY. */
  plain?: boolean;
}

export class LineProgress implements Progress {
  private readonly started = Date.now();
  private lastLine = this.started;
  private done = 0;
  private readonly intervalMs: number;
  private total: number | undefined;

  constructor(
    private readonly opts: ProgressOptions,
    private readonly stream: NodeJS.WriteStream,
  ) {
    this.intervalMs = (opts.lineIntervalS ?? 5) * 1000;
    this.total = opts.total;
  }

  setTotal(total: number): void {
    this.total = total;
  }

  update(done: number, extra?: string): void {
    this.done = done;
    const now = Date.now();
    if (now - this.lastLine < this.intervalMs) return;
    this.lastLine = now;
    this.write(extra);
  }

  finish(extra?: string): void {
    this.write(extra, true);
  }

  private write(extra: string | undefined, final = false): void {
    const { label, unit } = this.opts;
    const total = this.total;
    const of = total === undefined ? `${this.done} ${unit}` : `${this.done}/${total} ${unit} (${((100 * this.done) / Math.max(1, total)).toFixed(1)}%)`;
    const secs = ((Date.now() - this.started) / 1000).toFixed(1);
    this.stream.write(`${label}: ${final ? 'done, ' : ''}${of}, ${rate(this.done, this.started)} ${unit}/s, ${secs} s${extra ? `, ${extra}` : ''}\n`);
  }
}

export function rate(done: number, started: number): string {
  const s = (Date.now() - started) / 1000;
  return s > 0 ? Math.round(done / s).toString() : '0';
}
