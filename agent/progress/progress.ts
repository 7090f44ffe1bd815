import cliProgress from 'cli-progress';
import { LineProgress, rate } from './line-progress.js';

export type { Progress, ProgressOptions } from './line-progress.js';
import type { Progress, ProgressOptions } from './line-progress.js';

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
