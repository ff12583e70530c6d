/**
 * @module Package leases, both sides, as pure bookkeeping over injected monotonic times.
 *
 * A holder's lease starts when it *sent* the renewal (before anyone could have applied it) and lasts
 * `leaseMs`; the leader counts the same lease from when *it applied* the renewal, which is later,
 * plus a margin for clock rate drift. So the leader's view of a lease always ends after the
 * holder's own, and a package handed on only after the leader's view expired is never acted on by
 * two nodes at once (the holder stopped first), even when a partition hides the holder.
 *
 * Every node keeps the book (it records renewals as it applies them), so a new leader already knows
 * the leases once it has applied everything committed before its term. What a node applied before
 * it started is unknown: every package counts as held for one full lease from the start.
 */
import { assert } from "../../assert.ts";

export interface LeaseTiming {
  readonly leaseMs: number;
  /** Added on the leader's side: covers clock rate drift and scheduling between the two clocks. */
  readonly marginMs: number;
}

/** The leader's view: until when may each package's last holder still act? */
export class LeaseBook {
  private readonly heldUntilMs = new Map<string, number>();
  private anyHeldUntilMs = 0;

  constructor(private readonly timing: LeaseTiming) {
    assert(timing.leaseMs > 0 && timing.marginMs >= 0, "lease timing must be positive");
  }

  /** At start: renewals applied before are unknown, so any package may be held for one more lease. */
  assumeAllHeld(nowMs: number): void {
    this.anyHeldUntilMs = Math.max(this.anyHeldUntilMs, nowMs + this.timing.leaseMs + this.timing.marginMs);
  }

  /** A renewal by the current holder of `pkg` was applied now. */
  renewed(pkg: string, nowMs: number): void {
    const until = nowMs + this.timing.leaseMs + this.timing.marginMs;
    this.heldUntilMs.set(pkg, Math.max(until, this.heldUntilMs.get(pkg) ?? 0));
  }

  held(pkg: string, nowMs: number): boolean {
    return nowMs < this.anyHeldUntilMs || nowMs < (this.heldUntilMs.get(pkg) ?? 0);
  }

  /** Milliseconds of the package's lease left in the leader's view (0 when none). */
  leftMs(pkg: string, nowMs: number): number {
    return Math.max(0, Math.max(this.anyHeldUntilMs, this.heldUntilMs.get(pkg) ?? 0) - nowMs);
  }
}

/** A holder's own leases: it acts on a package only while one is valid for the current epoch. */
export class OwnLeases {
  private readonly leases = new Map<string, { readonly epoch: number; readonly untilMs: number }>();

  constructor(private readonly timing: LeaseTiming) {}

  /** A renewal sent at `sentAtMs` was applied and found this node holding `pkg` at `epoch`. */
  granted(pkg: string, epoch: number, sentAtMs: number): void {
    const current = this.leases.get(pkg);
    assert(current === undefined || epoch >= current.epoch, () => `epochs never go back: ${pkg} ${epoch} after ${current?.epoch}`);
    const untilMs = sentAtMs + this.timing.leaseMs;
    if (current === undefined || epoch > current.epoch || untilMs > current.untilMs) this.leases.set(pkg, { epoch, untilMs });
  }

  /** The package moved on (or was removed): its lease is void at once. */
  revoke(pkg: string): void {
    this.leases.delete(pkg);
  }

  valid(pkg: string, epoch: number, nowMs: number): boolean {
    const lease = this.leases.get(pkg);
    return lease !== undefined && lease.epoch === epoch && nowMs < lease.untilMs;
  }

  leftMs(pkg: string, epoch: number, nowMs: number): number {
    const lease = this.leases.get(pkg);
    return lease === undefined || lease.epoch !== epoch ? 0 : Math.max(0, lease.untilMs - nowMs);
  }
}
