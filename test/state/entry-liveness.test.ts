/** The bookkeeping of which log entries hold live values (server/state/entry-liveness.ts). */
import { describe, expect, test } from "bun:test";
import { EntryLiveness } from "../../server/state/entry-liveness.ts";
import { AssertionError } from "../../server/assert.ts";

const limits = { rowsMax: 100, stepsMax: 100 };

describe("EntryLiveness", () => {
  test("compacted entries without a live value go as runs; holders stay", () => {
    const live = new EntryLiveness(0);
    live.hold(2, "a", 10, 50);
    live.hold(5, "b", 10, 50);
    live.hold(5, "c", 10, 50);
    expect(live.takeDead(7, limits)).toEqual([[1, 1], [3, 4], [6, 7]]);
    expect(live.retained).toEqual({ bytes: 100, liveBytes: 30 });
    expect(live.lowestPresent()).toBe(2);
    // Entry 5 dies only when both of its values are gone; then it is deleted with the next take.
    live.release(5, 10);
    expect(live.takeDead(7, limits)).toEqual([]);
    live.release(5, 10);
    expect(live.takeDead(7, limits)).toEqual([[5, 5]]);
    expect(live.retained).toEqual({ bytes: 50, liveBytes: 10 });
  });

  test("an entry above the compaction point is never deleted, even with nothing live", () => {
    const live = new EntryLiveness(0);
    live.hold(3, "a", 10, 50);
    live.release(3, 10);
    expect(live.takeDead(2, limits)).toEqual([[1, 2]]);
    expect(live.lowestPresent()).toBe(3);
    expect(live.takeDead(4, limits)).toEqual([[3, 4]]);
  });

  test("each take is bounded in rows and in entries looked at", () => {
    const live = new EntryLiveness(0);
    live.hold(50, "a", 10, 50);
    expect(live.takeDead(1000, { rowsMax: 10, stepsMax: 1000 })).toEqual([[1, 10]]);
    expect(live.takeDead(1000, { rowsMax: 1000, stepsMax: 45 })).toEqual([[11, 49], [51, 55]]);
    expect(live.takeDead(1000, { rowsMax: 1000, stepsMax: 1000 })).toEqual([[56, 1000]]);
  });

  test("cleaning is worth it only when garbage exceeds both the live data and the slack", () => {
    const live = new EntryLiveness(0);
    for (let index = 1; index <= 4; index++) for (const key of ["a", "b", "c", "d"]) live.hold(index, `${key}${index}`, 25, 100);
    live.takeDead(4, limits);
    expect(live.worthCleaning(0)).toBeNull(); // every entry fully live
    for (let index = 1; index <= 3; index++) for (let k = 0; k < 3; k++) live.release(index, 25);
    // 400 bytes kept for 175 live: garbage 225 > 175.
    expect(live.worthCleaning(0)).toEqual({ index: 1, keys: ["a1", "b1", "c1", "d1"] });
    expect(live.worthCleaning(1000)).toBeNull();
  });

  test("holding a value in a compacted entry, or out of log order, is a bug", () => {
    const live = new EntryLiveness(10);
    expect(() => live.hold(10, "a", 1, 1)).toThrow(AssertionError);
    live.hold(12, "a", 1, 1);
    expect(() => live.hold(11, "b", 1, 1)).toThrow(AssertionError);
    expect(() => live.release(13, 1)).toThrow(AssertionError);
  });
});
