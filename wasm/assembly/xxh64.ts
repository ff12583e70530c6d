/**
 * @module XXH64 over a span of linear memory: the record hash behind topology delta detection.
 *
 * FROZEN. The hash of a CI record is stored as its fingerprint; changing one bit of this
 * algorithm (constants, lane order, tail handling, finalizer, byte order) silently turns every
 * stored fingerprint into a "changed" record. It is exactly XXH64 as specified in
 * https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md (little-endian lanes, 64-bit seed),
 * so any conforming implementation (Bun.hash.xxHash64, the TS twin in server/wasm/hash-twin.ts)
 * reproduces it. If a different hash is ever wanted, add a new kernel and a new fingerprint
 * version; do not edit this one.
 *
 * Why XXH64 rather than wyhash or XXH3: it needs only 64-bit multiply-low, add, xor and rotate,
 * which wasm has natively and the TS twin can emulate with u32 pairs; wyhash/XXH3 need a
 * 64x64->128 multiply, which neither has. It reads 8-byte words, 4 independent lanes for
 * inputs of 32 bytes or more, and ends with a full-avalanche finalizer.
 */

// The five XXH64 primes (spec §"Overview").
const P1: u64 = 0x9e3779b185ebca87;
const P2: u64 = 0xc2b2ae3d27d4eb4f;
const P3: u64 = 0x165667b19e3779f9;
const P4: u64 = 0x85ebca77c2b2ae63;
const P5: u64 = 0x27d4eb2f165667c5;

// @ts-ignore: decorator
@inline function round(acc: u64, lane: u64): u64 {
  acc += lane * P2;
  acc = rotl<u64>(acc, 31);
  return acc * P1;
}

// @ts-ignore: decorator
@inline function mergeRound(acc: u64, value: u64): u64 {
  acc ^= round(0, value);
  return acc * P1 + P4;
}

/** XXH64 of `len` bytes at `ptr`. wasm loads may be unaligned, so records need no padding. */
export function xxh64(ptr: usize, len: usize, seed: u64): u64 {
  const end = ptr + len;
  let p = ptr;
  let h: u64;
  if (len >= 32) {
    // Stripe loop: four lanes of 8 bytes, independent so the CPU overlaps the multiplies.
    const stripeLimit = end - 32;
    let v1 = seed + P1 + P2;
    let v2 = seed + P2;
    let v3 = seed;
    let v4 = seed - P1;
    do {
      v1 = round(v1, load<u64>(p));
      v2 = round(v2, load<u64>(p, 8));
      v3 = round(v3, load<u64>(p, 16));
      v4 = round(v4, load<u64>(p, 24));
      p += 32;
    } while (p <= stripeLimit);
    h = rotl<u64>(v1, 1) + rotl<u64>(v2, 7) + rotl<u64>(v3, 12) + rotl<u64>(v4, 18);
    h = mergeRound(h, v1);
    h = mergeRound(h, v2);
    h = mergeRound(h, v3);
    h = mergeRound(h, v4);
  } else {
    h = seed + P5;
  }
  h += <u64>len;
  // Remaining 0..31 bytes: whole words, then one half word, then single bytes (spec order).
  while (p + 8 <= end) {
    h ^= round(0, load<u64>(p));
    h = rotl<u64>(h, 27) * P1 + P4;
    p += 8;
  }
  if (p + 4 <= end) {
    h ^= (<u64>load<u32>(p)) * P1;
    h = rotl<u64>(h, 23) * P2 + P3;
    p += 4;
  }
  while (p < end) {
    h ^= (<u64>load<u8>(p)) * P5;
    h = rotl<u64>(h, 11) * P1;
    p += 1;
  }
  // Avalanche: every input bit affects every output bit.
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}
