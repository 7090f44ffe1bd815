/** One doctor finding. `warn` is shown but does not fail the run (e.g. a certificate expiring soon). */
export interface CheckResult {
  check: string;
  /** What was checked, e.g. the source id or the file. */
  subject: string;
  status: 'pass' | 'warn' | 'fail' | 'skip';
  detail: string;
  /** What the operator should do, for warn and fail. */
  fix?: string;
}

export const pass = (check: string, subject: string, detail: string): CheckResult => ({ check, subject, status: 'pass', detail });
export const fail = (check: string, subject: string, detail: string, fix: string): CheckResult => ({ check, subject, status: 'fail', detail, fix });
export const warn = (check: string, subject: string, detail: string, fix: string): CheckResult => ({ check, subject, status: 'warn', detail, fix });
export const skip = (check: string, subject: string, detail: string): CheckResult => ({ check, subject, status: 'skip', detail });
