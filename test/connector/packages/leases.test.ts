/** Lease bookkeeping on both sides (server/connector/packages/leases.ts). */
import { describe, expect, test } from "bun:test";
import { LeaseBook, OwnLeases } from "../../../server/connector/packages/leases.ts";
import { AssertionError } from "../../../server/assert.ts";

const timing = { leaseMs: 500, marginMs: 100 };

describe("OwnLeases (the holder)", () => {
  test("a lease counts from when the renewal was sent, for its epoch only", () => {
    const own = new OwnLeases(timing);
    own.granted("p", 3, 1000);
    expect(own.valid("p", 3, 1499)).toBe(true);
    expect(own.valid("p", 3, 1500)).toBe(false);
    expect(own.valid("p", 2, 1200)).toBe(false);
    expect(own.leftMs("p", 3, 1200)).toBe(300);
  });

  test("a newer epoch replaces the lease; revoking ends it at once; epochs never go back", () => {
    const own = new OwnLeases(timing);
    own.granted("p", 3, 1000);
    own.granted("p", 4, 900);
    expect(own.valid("p", 3, 1000)).toBe(false);
    expect(own.valid("p", 4, 1000)).toBe(true);
    own.revoke("p");
    expect(own.valid("p", 4, 1000)).toBe(false);
    own.granted("p", 4, 1000);
    expect(() => own.granted("p", 3, 1100)).toThrow(AssertionError);
  });
});

describe("LeaseBook (the leader)", () => {
  test("a renewal applied at t keeps the package held until t + lease + margin", () => {
    const book = new LeaseBook(timing);
    book.assumeAllHeld(0);
    book.renewed("p", 1000);
    expect(book.held("p", 1599)).toBe(true);
    expect(book.held("p", 1600)).toBe(false);
    expect(book.leftMs("p", 1500)).toBe(100);
  });

  test("a new leader treats every package as held for one full lease", () => {
    const book = new LeaseBook(timing);
    book.assumeAllHeld(5000);
    expect(book.held("never-renewed", 5599)).toBe(true);
    expect(book.held("never-renewed", 5600)).toBe(false);
  });

  test("the leader's view always ends after the holder's own (the safety argument)", () => {
    // The holder sends at s; the leader applies at a >= s. Whatever the delay, the holder's lease
    // (s + lease) ends before the leader's (a + lease + margin).
    for (const [sentAt, appliedAt] of [[0, 0], [0, 1], [100, 450], [1000, 5000]] as const) {
      const own = new OwnLeases(timing);
      const book = new LeaseBook(timing);
      book.assumeAllHeld(-10_000);
      own.granted("p", 1, sentAt);
      book.renewed("p", appliedAt);
      for (let t = sentAt; t < appliedAt + 1000; t += 7) if (own.valid("p", 1, t)) expect(book.held("p", t)).toBe(true);
    }
  });
});
