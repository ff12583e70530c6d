/**
 * @module Invariant checks that stay on in production (TigerBeetle style). A failed assertion is a
 * bug: it throws AssertionError, which nothing may catch and repair.
 */

export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Closes every `switch` over a union: the compiler proves it unreachable, the runtime checks it. */
export function unreachable(value: never): never {
  throw new AssertionError(`unreachable: ${JSON.stringify(value)}`);
}
