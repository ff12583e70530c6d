/**
 * @module The opsconn WebAssembly module: raw exports only, no bindings glue. The host copies a
 * whole batch into linear memory, calls a kernel once with `(ptr, len)`, and reads the results
 * from the same region: bindings that copy arrays per call, or one call per record, would cost
 * more than the hashing itself.
 *
 * Built with `--runtime stub` and no allocation on any kernel path, so everything from
 * `regionOffset()` to the end of memory belongs to the host; it grows memory itself
 * (WebAssembly.Memory.grow) when a batch does not fit. Loader: server/wasm/hash-kernel.ts.
 *
 * ## Hash batch layout, version 1 (all little-endian, `ptr` 8-byte aligned)
 *
 * ```
 * ptr + 0             u32  count            number of records
 * ptr + 4             u32  layoutVersion    = HASH_BATCH_LAYOUT_VERSION
 * ptr + 8             u64  seed             XXH64 seed for every record of the batch
 * ptr + 16            u32  offsets[count+1] byte offsets into the data region; offsets[0] = 0,
 *                                           non-decreasing; record i = data[offsets[i]..offsets[i+1])
 * outPtr              u64  hashes[count]    written by the kernel;
 *                                           outPtr = align8(ptr + 16 + 4 * (count + 1))
 * dataPtr             u8   data[offsets[count]]   dataPtr = outPtr + 8 * count
 * ```
 * The batch must fit: `dataPtr + offsets[count] - ptr <= len`. The output sits before the data
 * so it stays 8-aligned whatever the record lengths (the host reads it as a BigUint64Array).
 *
 * `hashBatch` validates the whole layout before writing anything: on an error code no hash has
 * been written.
 */
import { xxh64 } from "./xxh64";

export const HASH_BATCH_LAYOUT_VERSION: u32 = 1;
export const HASH_BATCH_HEADER_BYTES: u32 = 16;

/** Status codes of hashBatch; the host maps them to messages (server/wasm/hash-kernel.ts). */
export const HASH_OK: i32 = 0;
export const HASH_ERR_MISALIGNED: i32 = -1;
export const HASH_ERR_SHORT_HEADER: i32 = -2;
export const HASH_ERR_LAYOUT_VERSION: i32 = -3;
export const HASH_ERR_TABLES_OVERFLOW: i32 = -4;
export const HASH_ERR_BAD_OFFSETS: i32 = -5;
export const HASH_ERR_DATA_OVERFLOW: i32 = -6;
export const HASH_ERR_OUT_OF_MEMORY_BOUNDS: i32 = -7;

/** First 16-aligned byte after static data: the start of the host's batch region. */
export function regionOffset(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

// @ts-ignore: decorator
@inline function outputOffset(count: u64): u64 {
  return (<u64>HASH_BATCH_HEADER_BYTES + 4 * (count + 1) + 7) & ~(<u64>7);
}

/**
 * Hashes every record of the batch at `ptr` (layout above) with XXH64 and writes `count` u64
 * hashes to the output table. Returns HASH_OK or a negative HASH_ERR_* code.
 */
export function hashBatch(ptr: usize, len: usize): i32 {
  if ((ptr & 7) != 0) return HASH_ERR_MISALIGNED;
  // Checked rather than left to trap, so the host gets a code instead of a RuntimeError.
  if (<u64>ptr + <u64>len > (<u64>memory.size() << 16)) return HASH_ERR_OUT_OF_MEMORY_BOUNDS;
  if (len < <usize>HASH_BATCH_HEADER_BYTES) return HASH_ERR_SHORT_HEADER;
  if (load<u32>(ptr, 4) != HASH_BATCH_LAYOUT_VERSION) return HASH_ERR_LAYOUT_VERSION;
  const count = load<u32>(ptr);
  // u64 arithmetic: 4 * (count + 1) can exceed a wasm32 address.
  const outRel = outputOffset(<u64>count);
  const dataRel = outRel + 8 * <u64>count;
  if (dataRel > <u64>len) return HASH_ERR_TABLES_OVERFLOW;
  const status = checkOffsets(ptr + HASH_BATCH_HEADER_BYTES, count, <u64>len - dataRel);
  if (status != HASH_OK) return status;
  hashRecords(ptr, count, ptr + <usize>outRel, ptr + <usize>dataRel);
  return HASH_OK;
}

/** offsets[0] = 0, non-decreasing, last <= data bytes available: then every record is in bounds. */
function checkOffsets(offsetsPtr: usize, count: u32, dataBytesAvailable: u64): i32 {
  if (load<u32>(offsetsPtr) != 0) return HASH_ERR_BAD_OFFSETS;
  let previous: u32 = 0;
  for (let i: u32 = 1; i <= count; i++) {
    const next = load<u32>(offsetsPtr + (<usize>i << 2));
    if (next < previous) return HASH_ERR_BAD_OFFSETS;
    previous = next;
  }
  if (<u64>previous > dataBytesAvailable) return HASH_ERR_DATA_OVERFLOW;
  return HASH_OK;
}

function hashRecords(ptr: usize, count: u32, outPtr: usize, dataPtr: usize): void {
  const seed = load<u64>(ptr, 8);
  const offsetsPtr = ptr + HASH_BATCH_HEADER_BYTES;
  let start = load<u32>(offsetsPtr);
  for (let i: u32 = 0; i < count; i++) {
    const end = load<u32>(offsetsPtr + ((<usize>i + 1) << 2));
    store<u64>(outPtr + (<usize>i << 3), xxh64(dataPtr + start, end - start, seed));
    start = end;
  }
}
