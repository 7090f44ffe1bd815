import cliProgress from 'cli-progress';

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

/**
 * A progress bar on a terminal, plain periodic lines otherwise (logs, CI, systemd journal),
 * so a long operation is never silent and never fills a log with carriage returns.
 */
export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const plain = opts.plain ?? stream.isTTY !== true;
  return plain ? new LineProgress(opts, stream) : new BarProgress(opts, stream);
}

class BarProgress implements Progress {
  private readonly bar: cliProgress.SingleBar;

  constructor(opts: ProgressOptions, stream: NodeJS.WriteStream) {
    const format =
      opts.total === undefined
        ? `${opts.label} | {value} ${opts.unit} | {rate} ${opts.unit}/s | {extra}`
        : `${opts.label} [{bar}] {percentage}% | {value}/{total} ${opts.unit} | {rate} ${opts.unit}/s | ETA {eta_formatted} {extra}`;
    this.bar = new cliProgress.SingleBar({ format, stream, hideCursor: true, etaBuffer: 50, fps: 5, clearOnComplete: false }, cliProgress.Presets.shades_classic);
    this.started = Date.now();
    this.bar.start(opts.total ?? 0, 0, { rate: '0', extra: '' });
  }

  private readonly started: number;

  update(done: number, extra = ''): void {
    this.bar.update(done, { rate: rate(done, this.started), extra });
  }

  finish(extra = ''): void {
    this.bar.update({ extra });
    this.bar.stop();
  }

  setTotal(total: number): void {
    this.bar.setTotal(total);
  }
}

class LineProgress implements Progress {
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

function rate(done: number, started: number): string {
  const s = (Date.now() - started) / 1000;
  return s > 0 ? Math.round(done / s).toString() : '0';
}
