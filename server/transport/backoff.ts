/**
 * @module Reconnect delays: exponential backoff with jitter, bounded above. Pure: the caller passes
 * the attempt number and a uniform random number, so tests pin every value.
 *
 * "Equal jitter" (half fixed, half random): a restarted peer is not hit by every dialer at the same
 * instant, yet no delay collapses to zero the way full jitter allows.
 */
import { assert } from "../assert.ts";
import { transportLimits } from "../constants.ts";

export interface BackoffLimits {
  readonly delayMinMs: number;
  readonly delayMaxMs: number;
}

export const defaultBackoff: BackoffLimits = {
  delayMinMs: transportLimits.reconnectDelayMinMs,
  delayMaxMs: transportLimits.reconnectDelayMaxMs,
};

/** Beyond this many doublings the ceiling applies anyway; keeps 2^attempt finite and exact. */
const doublingsMax = 30;

/** Delay before reconnect attempt `attempt` (0 = first retry after a loss); in [d/2, d], d ≤ max. */
export function reconnectDelayMs(attempt: number, random01: number, limits: BackoffLimits = defaultBackoff): number {
  assert(Number.isInteger(attempt) && attempt >= 0, "attempt is a count");
  assert(random01 >= 0 && random01 < 1, "random01 is uniform in [0, 1)");
  assert(limits.delayMinMs > 0 && limits.delayMinMs <= limits.delayMaxMs, "backoff limits out of order");
  const ceiling = Math.min(limits.delayMaxMs, limits.delayMinMs * 2 ** Math.min(attempt, doublingsMax));
  const delay = Math.round(ceiling / 2 + (ceiling / 2) * random01);
  assert(delay >= 0 && delay <= limits.delayMaxMs, "delay within bounds");
  return delay;
}
