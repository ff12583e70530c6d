/**
 * @module Seeded pseudo-random numbers for the Raft core and its tests (splitmix32). The core takes
 * randomness only through the injected Rng, so the same seed replays the same elections.
 */
import { assert } from "../assert.ts";
import type { Rng } from "./types.ts";

/** A deterministic Rng: the same seed yields the same sequence on every platform. */
export function seededRng(seed: number): Rng {
  assert(Number.isInteger(seed), "seed must be an integer");
  let state = seed >>> 0;
  const next32 = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  return {
    nextInt(maxExclusive: number): number {
      assert(Number.isInteger(maxExclusive) && maxExclusive > 0, "nextInt bound must be a positive integer");
      assert(maxExclusive <= 0x1_0000_0000, "nextInt bound must fit 32 bits");
      // Multiply-shift maps 32 random bits onto [0, max) without the modulo's division.
      const value = Math.floor((next32() / 0x1_0000_0000) * maxExclusive);
      assert(value >= 0 && value < maxExclusive, "nextInt result out of range");
      return value;
    },
  };
}
