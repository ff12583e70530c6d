/**
 * @module The simulator's own seeded randomness (sfc32 seeded through splitmix32). Every choice the
 * simulator makes (scenario shape, delays, losses, faults, client traffic) comes from here, never
 * from Math.random or the clock, so `SEED=n` replays a run exactly. Each Raft node gets its own
 * core Rng from `deriveSeed`, so adding a consumer of simulator randomness does not shift elections.
 */
import { assert } from "../../server/assert.ts";

/** splitmix32 finaliser: spreads a 32-bit value over all 32 bits. */
function mix32(value: number): number {
  let z = (value + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A stable child seed for (seed, label): used for per-node core Rngs and per-purpose streams. */
export function deriveSeed(seed: number, label: string): number {
  let h = mix32(seed >>> 0);
  for (let i = 0; i < label.length; i += 1) h = mix32(h ^ label.charCodeAt(i));
  return h;
}

export class SimRng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    assert(Number.isInteger(seed), "simulator seed must be an integer");
    this.a = mix32(seed >>> 0);
    this.b = mix32(this.a ^ 0x1234567);
    this.c = mix32(this.b ^ 0x7654321);
    this.d = 1;
    // sfc32 needs a few rounds before its output is well mixed.
    for (let i = 0; i < 12; i += 1) this.next32();
  }

  next32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform integer in [0, maxExclusive). */
  int(maxExclusive: number): number {
    assert(maxExclusive > 0 && maxExclusive <= 0x1_0000_0000, "int bound out of range");
    return Math.floor((this.next32() / 0x1_0000_0000) * maxExclusive);
  }

  /** Uniform integer in [min, max]. */
  range(min: number, max: number): number {
    assert(min <= max, "range needs min ≤ max");
    return min + this.int(max - min + 1);
  }

  chance(probability: number): boolean {
    if (probability <= 0) return false;
    if (probability >= 1) return true;
    return this.next32() < probability * 0x1_0000_0000;
  }

  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, "pick from an empty list");
    return items[this.int(items.length)] as T;
  }

  /** Index chosen with probability proportional to its weight. */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    assert(total > 0, "weighted choice needs a positive total");
    let roll = this.next32() / 0x1_0000_0000 * total;
    for (let i = 0; i < weights.length; i += 1) {
      roll -= weights[i] ?? 0;
      if (roll < 0 && (weights[i] ?? 0) > 0) return i;
    }
    let last = weights.length - 1;
    while (last > 0 && (weights[last] ?? 0) <= 0) last -= 1;
    return last;
  }
}
