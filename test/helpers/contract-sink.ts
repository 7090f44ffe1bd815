import type { ReadingSink, Submission, SubmitResult } from '../../agent/contracts/reading-sink.js';

/**
 * The sink a source under contract test submits to: it records every submission, and can hold
 * commits (until `release`) or fail them, so the test knows, at the moment a peer sees an
 * acknowledgement, whether the reading was committed.
 */
export class ContractSink implements ReadingSink {
  readonly submissions: Submission[] = [];
  /** Values of the readings whose commit resolved. */
  readonly committed = new Set<number>();
  rejectedReasons: string[] = [];
  private mode: 'pass' | 'hold' | 'fail' = 'pass';
  private held: (() => void)[] = [];

  constructor(private readonly next: ReadingSink) {}

  hold(): void {
    this.mode = 'hold';
  }

  fail(): void {
    this.mode = 'fail';
  }

  /** Back to committing; held commits go on now. */
  release(): void {
    this.mode = 'pass';
    for (const go of this.held.splice(0)) go();
  }

  seen(value: number): number {
    return this.submissions.filter((s) => s.readings.some((r) => r.value === value)).length;
  }

  async submit(sub: Submission): Promise<SubmitResult> {
    this.submissions.push(sub);
    if (this.mode === 'fail') throw new Error('commit failed (contract test: the store refused it)');
    if (this.mode === 'hold') await new Promise<void>((go) => this.held.push(go));
    const result = await this.next.submit(sub);
    for (const r of sub.readings) this.committed.add(r.value);
    this.rejectedReasons.push(...(sub.rejected ?? []));
    return result;
  }
}
