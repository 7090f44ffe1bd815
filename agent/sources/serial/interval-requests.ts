import type { IntervalOutcome } from '../../contracts/interval-control.js';
import { INTERVAL_STATUS_NAMES, type Frame } from './protocol.js';

type SetInterval = Extract<Frame, { type: 'set-interval' }>;
type IntervalAck = Extract<Frame, { type: 'interval-ack' }>;

/** PROTOCOL.md §3.10: a SET_INTERVAL unanswered this long is sent again, at most this many times in all. */
export const INTERVAL_RESEND_MS = 1000;
export const INTERVAL_TRIES = 3;
/** Requests waiting for an INTERVAL_ACK at once: more are refused (a policy that flaps must not grow this). */
const MAX_PENDING = 32;

interface Pending {
  frame: SetInterval;
  tries: number;
  timer: NodeJS.Timeout;
  resolve(o: IntervalOutcome): void;
}

/**
 * The gateway's side of §3.10-§3.11: numbers each SET_INTERVAL, resends it until the device's
 * INTERVAL_ACK with the same number and session arrives, and gives up with `timeout` after
 * INTERVAL_TRIES (a version 2 device without interval control drops the frame as an unknown type).
 */
export class IntervalRequests {
  private next = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly via: string,
    private readonly send: (f: SetInterval) => void,
  ) {}

  request(session: number, sensor: number, periodMs: number): Promise<IntervalOutcome> {
    if (this.pending.size >= MAX_PENDING) return Promise.resolve({ status: 'timeout', via: this.via });
    const request = this.next;
    this.next = (this.next % 0xffff) + 1; // u16, never 0
    const frame: SetInterval = { version: 2, type: 'set-interval', session, sensor, request, periodMs };
    return new Promise((resolve) => {
      const p: Pending = { frame, tries: 0, resolve, timer: undefined as unknown as NodeJS.Timeout };
      this.pending.set(request, p);
      this.attempt(p);
    });
  }

  private attempt(p: Pending): void {
    if (p.tries >= INTERVAL_TRIES) return this.settle(p.frame.request, { status: 'timeout', via: this.via });
    p.tries++;
    this.send(p.frame);
    p.timer = setTimeout(() => this.attempt(p), INTERVAL_RESEND_MS);
  }

  /** An INTERVAL_ACK from the device: settles its request, if it is one of ours (same number and session). */
  answer(f: IntervalAck): boolean {
    const p = this.pending.get(f.request);
    if (!p || p.frame.session !== f.session || p.frame.sensor !== f.sensor) return false;
    this.settle(f.request, { status: INTERVAL_STATUS_NAMES[f.status], via: this.via, ...(f.status !== 2 ? { intervalMs: f.periodMs, minMs: f.minMs, maxMs: f.maxMs } : {}) });
    return true;
  }

  private settle(request: number, outcome: IntervalOutcome): void {
    const p = this.pending.get(request);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(request);
    p.resolve(outcome);
  }

  /** The line is gone or the agent stops: every waiting request ends now. */
  cancelAll(status: 'not_connected' | 'timeout'): void {
    for (const request of [...this.pending.keys()]) this.settle(request, { status, via: this.via });
  }
}
