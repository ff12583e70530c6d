/**
 * @module The batch shape shared by the WASM hash kernel and its TS twin: records either as
 * separate byte arrays or already packed (offsets table + one data buffer, the same shape the
 * kernel reads), the limits from server/constants.ts, and the seed range. Both implementations
 * validate through here, so they accept and reject exactly the same batches.
 */
import { assert } from "../assert.ts";
import { wasmLimits } from "../constants.ts";

/**
 * Records packed back to back: record i is `data.subarray(offsets[i], offsets[i + 1])`.
 * `offsets` has count + 1 entries, starts at 0 and never decreases.
 */
export interface PackedRecords {
  readonly offsets: Uint32Array;
  readonly data: Uint8Array;
}

export type RecordBatch = readonly Uint8Array[] | PackedRecords;

/** A batch over wasmLimits: expected under load, so a typed error the caller can split on. */
export class HashBatchLimitError extends RangeError {
  override readonly name = "HashBatchLimitError";
}

export interface BatchShape {
  readonly count: number;
  readonly dataBytes: number;
}

export const seedMax = (1n << 64n) - 1n;

export function isPacked(batch: RecordBatch): batch is PackedRecords {
  return !Array.isArray(batch);
}

/** Count and total record bytes, after checking limits and (for packed input) the offsets. */
export function batchShape(batch: RecordBatch): BatchShape {
  const shape = isPacked(batch) ? packedShape(batch) : arrayShape(batch);
  if (shape.count > wasmLimits.hashBatchRecordsMax) {
    throw new HashBatchLimitError(
      `hash batch has ${shape.count} records, over wasmLimits.hashBatchRecordsMax (${wasmLimits.hashBatchRecordsMax}); split it`,
    );
  }
  if (shape.dataBytes > wasmLimits.hashBatchDataBytesMax) {
    throw new HashBatchLimitError(
      `hash batch has ${shape.dataBytes} record bytes, over wasmLimits.hashBatchDataBytesMax (${wasmLimits.hashBatchDataBytesMax}); split it`,
    );
  }
  return shape;
}

function arrayShape(records: readonly Uint8Array[]): BatchShape {
  let dataBytes = 0;
  // Bounded: stop summing once over the limit, batchShape reports it.
  for (let i = 0; i < records.length && dataBytes <= wasmLimits.hashBatchDataBytesMax; i++) {
    dataBytes += records[i]!.length;
  }
  return { count: records.length, dataBytes };
}

function packedShape(packed: PackedRecords): BatchShape {
  const { offsets, data } = packed;
  assert(offsets.length >= 1, "packed records: offsets needs count + 1 entries");
  assert(offsets[0] === 0, "packed records: offsets[0] must be 0");
  const count = offsets.length - 1;
  if (count > wasmLimits.hashBatchRecordsMax) return { count, dataBytes: 0 };
  // The message is built only on failure: a template literal per offset would cost more than the
  // hashing of a small record.
  for (let i = 0; i < count; i++) {
    if (offsets[i]! > offsets[i + 1]!) assert(false, () => `packed records: offsets must not decrease (at ${i + 1})`);
  }
  const dataBytes = offsets[count]!;
  assert(dataBytes <= data.length, "packed records: offsets[count] is past the end of data");
  return { count, dataBytes };
}

export function checkSeed(seed: bigint): void {
  assert(seed >= 0n && seed <= seedMax, () => `hash seed must be an unsigned 64-bit integer, got ${seed}`);
}

export function checkOutput(out: BigUint64Array, count: number): void {
  assert(out.length >= count, () => `hash output has ${out.length} slots for ${count} records`);
}
