/**
 * @module The pure-TS twin of the WASM record hash (wasm/assembly/xxh64.ts): XXH64, bit-identical,
 * for tests, for hosts where the module cannot load, and as the benchmark baseline.
 *
 * FROZEN like the kernel: stored topology fingerprints are these hashes. See the kernel's header.
 *
 * BigInt would make this 20x slower, so a 64-bit value is a pair of int32 numbers (hi, lo) kept in
 * locals. A function cannot return two numbers without allocating, so the 64-bit helpers return
 * the low half and leave the high half in the module variable `hiOut`, which the caller reads at
 * once. Every multiply in XXH64 is by one of its primes, so only multiply-low-64 is needed:
 * lo*lo's high half (mulHigh32) plus the two cross products mod 2^32 (Math.imul).
 */
import { assert } from "../assert.ts";
import { batchShape, checkOutput, checkSeed, isPacked, type RecordBatch } from "./record-batch.ts";

assert(new Uint8Array(new Uint32Array([1]).buffer)[0] === 1, "the hash twin writes u64 results as little-endian u32 pairs");

// XXH64 primes split into int32 halves.
const P1_HI = 0x9e3779b1 | 0;
const P1_LO = 0x85ebca87 | 0;
const P2_HI = 0xc2b2ae3d | 0;
const P2_LO = 0x27d4eb4f | 0;
const P3_HI = 0x165667b1 | 0;
const P3_LO = 0x9e3779f9 | 0;
const P4_HI = 0x85ebca77 | 0;
const P4_LO = 0xc2b2ae63 | 0;
const P5_HI = 0x27d4eb2f | 0;
const P5_LO = 0x165667c5 | 0;

/** High half of the last 64-bit result; read it immediately after the call that set it. */
let hiOut = 0;

/**
 * High 32 bits of the 64-bit product of two u32. Splitting only b into 16-bit halves keeps each
 * partial product below 2^48, exact in a double; dividing by 2^16 twice is exact too.
 */
function mulHigh32(a: number, b: number): number {
  const low = a * (b & 0xffff);
  const high = a * (b >>> 16);
  return Math.floor((Math.floor(low / 65536) + high) / 65536);
}

/** (aHi,aLo) * (bHi,bLo) mod 2^64. */
function mul64(aHi: number, aLo: number, bHi: number, bLo: number): number {
  hiOut = (mulHigh32(aLo >>> 0, bLo >>> 0) + Math.imul(aHi, bLo) + Math.imul(aLo, bHi)) | 0;
  return Math.imul(aLo, bLo);
}

/** (aHi,aLo) + (bHi,bLo) mod 2^64. */
function add64(aHi: number, aLo: number, bHi: number, bLo: number): number {
  const lo = (aLo + bLo) | 0;
  hiOut = (aHi + bHi + ((lo >>> 0) < (aLo >>> 0) ? 1 : 0)) | 0;
  return lo;
}

/** XXH64 round: rotl(acc + lane * P2, 31) * P1. */
function round(accHi: number, accLo: number, laneHi: number, laneLo: number): number {
  const mLo = mul64(laneHi, laneLo, P2_HI, P2_LO);
  const sLo = add64(accHi, accLo, hiOut, mLo);
  const sHi = hiOut;
  return mul64((sHi << 31) | (sLo >>> 1), (sLo << 31) | (sHi >>> 1), P1_HI, P1_LO);
}

/** XXH64 merge round: (acc ^ round(0, value)) * P1 + P4. */
function mergeRound(accHi: number, accLo: number, valueHi: number, valueLo: number): number {
  const rLo = round(0, 0, valueHi, valueLo);
  const mLo = mul64(accHi ^ hiOut, accLo ^ rLo, P1_HI, P1_LO);
  return add64(hiOut, mLo, P4_HI, P4_LO);
}

function readU32(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
}

/** XXH64 of b[start..end) with seed (seedHi, seedLo); returns the low half, high half in hiOut. */
function xxh64Range(b: Uint8Array, start: number, end: number, seedHi: number, seedLo: number): number {
  let p = start;
  let hHi: number;
  let hLo: number;
  if (end - start >= 32) {
    hLo = stripes(b, start, end, seedHi, seedLo);
    hHi = hiOut;
    p = start + ((end - start) & ~31);
  } else {
    hLo = add64(seedHi, seedLo, P5_HI, P5_LO);
    hHi = hiOut;
  }
  hLo = add64(hHi, hLo, 0, end - start);
  hHi = hiOut;
  for (; p + 8 <= end; p += 8) {
    const kLo = round(0, 0, readU32(b, p + 4), readU32(b, p));
    const xHi = hHi ^ hiOut;
    const xLo = hLo ^ kLo;
    hLo = mul64((xHi << 27) | (xLo >>> 5), (xLo << 27) | (xHi >>> 5), P1_HI, P1_LO);
    hLo = add64(hiOut, hLo, P4_HI, P4_LO);
    hHi = hiOut;
  }
  if (p + 4 <= end) {
    const kLo = mul64(0, readU32(b, p), P1_HI, P1_LO);
    const xHi = hHi ^ hiOut;
    const xLo = hLo ^ kLo;
    hLo = mul64((xHi << 23) | (xLo >>> 9), (xLo << 23) | (xHi >>> 9), P2_HI, P2_LO);
    hLo = add64(hiOut, hLo, P3_HI, P3_LO);
    hHi = hiOut;
    p += 4;
  }
  for (; p < end; p++) {
    const kLo = mul64(0, b[p]!, P5_HI, P5_LO);
    const xHi = hHi ^ hiOut;
    const xLo = hLo ^ kLo;
    hLo = mul64((xHi << 11) | (xLo >>> 21), (xLo << 11) | (xHi >>> 21), P1_HI, P1_LO);
    hHi = hiOut;
  }
  return avalanche(hHi, hLo);
}

/** The 32-byte stripe loop and lane merge, for inputs of 32 bytes or more. */
function stripes(b: Uint8Array, start: number, end: number, seedHi: number, seedLo: number): number {
  let v1Lo = add64(seedHi, seedLo, P1_HI, P1_LO);
  v1Lo = add64(hiOut, v1Lo, P2_HI, P2_LO);
  let v1Hi = hiOut;
  let v2Lo = add64(seedHi, seedLo, P2_HI, P2_LO);
  let v2Hi = hiOut;
  let v3Hi = seedHi;
  let v3Lo = seedLo;
  // seed - P1 = seed + (2^64 - P1).
  let v4Lo = add64(seedHi, seedLo, ~P1_HI + (P1_LO === 0 ? 1 : 0), -P1_LO | 0);
  let v4Hi = hiOut;
  for (let p = start; p + 32 <= end; p += 32) {
    v1Lo = round(v1Hi, v1Lo, readU32(b, p + 4), readU32(b, p));
    v1Hi = hiOut;
    v2Lo = round(v2Hi, v2Lo, readU32(b, p + 12), readU32(b, p + 8));
    v2Hi = hiOut;
    v3Lo = round(v3Hi, v3Lo, readU32(b, p + 20), readU32(b, p + 16));
    v3Hi = hiOut;
    v4Lo = round(v4Hi, v4Lo, readU32(b, p + 28), readU32(b, p + 24));
    v4Hi = hiOut;
  }
  // h = rotl(v1,1) + rotl(v2,7) + rotl(v3,12) + rotl(v4,18)
  let hLo = add64((v1Hi << 1) | (v1Lo >>> 31), (v1Lo << 1) | (v1Hi >>> 31), (v2Hi << 7) | (v2Lo >>> 25), (v2Lo << 7) | (v2Hi >>> 25));
  hLo = add64(hiOut, hLo, (v3Hi << 12) | (v3Lo >>> 20), (v3Lo << 12) | (v3Hi >>> 20));
  hLo = add64(hiOut, hLo, (v4Hi << 18) | (v4Lo >>> 14), (v4Lo << 18) | (v4Hi >>> 14));
  hLo = mergeRound(hiOut, hLo, v1Hi, v1Lo);
  hLo = mergeRound(hiOut, hLo, v2Hi, v2Lo);
  hLo = mergeRound(hiOut, hLo, v3Hi, v3Lo);
  return mergeRound(hiOut, hLo, v4Hi, v4Lo);
}

/** h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32. */
function avalanche(hHi: number, hLo: number): number {
  let lo = mul64(hHi, hLo ^ (hHi >>> 1), P2_HI, P2_LO);
  let hi = hiOut;
  lo = mul64(hi ^ (hi >>> 29), lo ^ ((lo >>> 29) | (hi << 3)), P3_HI, P3_LO);
  hi = hiOut;
  hiOut = hi;
  return lo ^ hi;
}

/** XXH64 of one byte string, as a bigint. For tests and one-offs; batches use hashBatchTwin. */
export function xxh64Twin(bytes: Uint8Array, seed = 0n): bigint {
  checkSeed(seed);
  const lo = xxh64Range(bytes, 0, bytes.length, Number(seed >> 32n) | 0, Number(seed & 0xffffffffn) | 0);
  return (BigInt(hiOut >>> 0) << 32n) | BigInt(lo >>> 0);
}

/**
 * Hashes every record of the batch into out[0..count), exactly as RecordHasher.hashBatch does.
 * Results go through a u32 view of `out`, so no BigInt is made per record.
 */
export function hashBatchTwin(batch: RecordBatch, out: BigUint64Array, seed = 0n): void {
  const { count } = batchShape(batch);
  checkSeed(seed);
  checkOutput(out, count);
  const seedHi = Number(seed >> 32n) | 0;
  const seedLo = Number(seed & 0xffffffffn) | 0;
  const out32 = new Uint32Array(out.buffer, out.byteOffset, count * 2);
  if (isPacked(batch)) {
    const { offsets, data } = batch;
    for (let i = 0; i < count; i++) {
      out32[2 * i] = xxh64Range(data, offsets[i]!, offsets[i + 1]!, seedHi, seedLo);
      out32[2 * i + 1] = hiOut;
    }
  } else {
    for (let i = 0; i < count; i++) {
      const record = batch[i]!;
      out32[2 * i] = xxh64Range(record, 0, record.length, seedHi, seedLo);
      out32[2 * i + 1] = hiOut;
    }
  }
}
