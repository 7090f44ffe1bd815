import type { GuardStore } from '../store/guard-store.js';
import type { MaintenanceBook } from './maintenance.js';
import type { QuarantineBook } from './quarantine.js';

/**
 * Applies what the operator asked through the CLI (`quarantine release`, `maintenance start|stop`):
 * requests are rows in the store, so they work whether the agent runs (polled about every
 * second) or not (applied at the next start); each request's result is written back for the CLI.
 */
export class GuardControl {
  constructor(
    private readonly store: GuardStore,
    private readonly quarantines: QuarantineBook,
    private readonly maintenance: MaintenanceBook,
  ) {}

  tick(now: number): void {
    for (const req of this.store.pendingRequests()) {
      let result: string;
      if (req.action === 'quarantine_release') {
        result = this.quarantines.release(req.target, 'operator', now) ? 'released' : `${req.target} is not quarantined (edge-agent quarantine list shows the keys)`;
      } else if (req.action === 'maintenance_start') {
        // A duration counts from the request: a request applied at the next start does not last longer.
        result = req.until !== null && req.until <= now ? 'expired before the agent applied it' : this.maintenance.start(req.target, req.until, now, 'operator');
      } else {
        result = this.maintenance.stop(req.target, now, 'operator');
      }
      this.store.finishRequest(req.id, result, now);
    }
  }
}
