/** Running sums of the log entries' sizes (server/state/entry-sizes.ts). */
import { describe, expect, test } from "bun:test";
import { EntrySizes } from "../../server/state/entry-sizes.ts";
import { AssertionError } from "../../server/assert.ts";
import { seededRng } from "../../server/raft/prng.ts";

describe("EntrySizes", () => {
  test("bytes in a range, with gaps; what to let go to keep a range within a bound", () => {
    const sizes = new EntrySizes();
    for (const [index, bytes] of [[1, 10], [2, 20], [5, 50], [6, 60], [7, 70]] as const) sizes.note(index, bytes);
    expect(sizes.bytesIn(1, 7)).toBe(210);
    expect(sizes.bytesIn(3, 5)).toBe(50);
    expect(sizes.bytesIn(3, 4)).toBe(0);
    expect(sizes.bytesIn(6, 5)).toBe(0);
    expect(sizes.keepWithin(7, 1000)).toBe(0); // everything fits
    expect(sizes.keepWithin(7, 130)).toBe(5); // (5, 7] holds 130
    expect(sizes.keepWithin(7, 129)).toBe(6); // one byte less: 6 goes too
    expect(sizes.keepWithin(6, 60)).toBe(5);
    sizes.forgetThrough(2);
    expect(sizes.bytesIn(1, 7)).toBe(180);
    expect(sizes.keepWithin(7, 1000)).toBe(0);
    sizes.reset();
    expect(sizes.bytesIn(1, 7)).toBe(0);
    sizes.note(3, 5);
    expect(sizes.bytesIn(1, 7)).toBe(5);
  });

  test("against a plain list, through many notes and forgets (the prefix is dropped now and then)", () => {
    const rng = seededRng(7);
    const sizes = new EntrySizes();
    let model: Array<[number, number]> = [];
    let index = 0;
    for (let step = 0; step < 20_000; step++) {
      if (rng.nextInt(4) > 0) {
        index += 1 + rng.nextInt(3);
        const bytes = rng.nextInt(500);
        sizes.note(index, bytes);
        model.push([index, bytes]);
      } else if (model.length > 0) {
        const through = model[rng.nextInt(model.length)]![0];
        sizes.forgetThrough(through);
        model = model.filter(([i]) => i > through);
      }
      const from = 1 + rng.nextInt(index + 1);
      const to = from + rng.nextInt(50);
      expect(sizes.bytesIn(from, to)).toBe(model.filter(([i]) => i >= from && i <= to).reduce((a, [, b]) => a + b, 0));
      const bound = rng.nextInt(3000);
      const keep = sizes.keepWithin(index, bound);
      const kept = model.filter(([i]) => i > keep).reduce((a, [, b]) => a + b, 0);
      expect(kept).toBeLessThanOrEqual(bound);
      // Minimal: letting go one entry less would exceed the bound.
      if (keep > 0) expect(model.filter(([i]) => i >= keep).reduce((a, [, b]) => a + b, 0)).toBeGreaterThan(bound);
    }
  });

  test("notes out of log order are a bug", () => {
    const sizes = new EntrySizes();
    sizes.note(5, 1);
    expect(() => sizes.note(5, 1)).toThrow(AssertionError);
    expect(() => sizes.note(6, -1)).toThrow(AssertionError);
  });
});
