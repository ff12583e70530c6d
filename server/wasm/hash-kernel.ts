/**
 * @module Loader and batch API for the XXH64 record-hash kernel (wasm/assembly/index.ts).
 *
 * A RecordHasher owns one module instance and its linear memory. hashBatch lays the whole batch
 * out in memory (layout version 1, documented in wasm/assembly/index.ts), makes exactly one call
 * into wasm, and copies the u64 results out with one typed-array copy: no bindings glue, no
 * per-record crossings, no BigInt per record.
 *
 * The .wasm is imported `with { type: "file" }` so that `bun build --compile` embeds it in the
 * binary; the path is then a `/$bunfs/...` path that Bun.file reads from inside the executable.
 * It must exist at import time: run `npm run build:wasm` first (wasm/build/ is not committed).
 */
import wasmPath from "../../wasm/build/release.wasm" with { type: "file" };
import { assert } from "../assert.ts";
import { wasmLimits } from "../constants.ts";
import { batchShape, checkOutput, checkSeed, isPacked, type RecordBatch } from "./record-batch.ts";

/** Must equal HASH_BATCH_LAYOUT_VERSION / HASH_BATCH_HEADER_BYTES in the module; checked at load. */
const layoutVersion = 1;
const headerBytes = 16;
const pageBytes = 65536;
/**
 * Below this length a byte loop copies a record faster than TypedArray.set, whose fixed cost is
 * about 18 ns a call in Bun 1.4 (measured: 8 bytes 5 ns vs 19 ns, 32 bytes equal, 64 bytes 32 vs 21).
 */
const copyLoopBytesMax = 32;

/** Kernel status codes (wasm/assembly/index.ts); any non-zero one here is a loader bug. */
const statusNames: Readonly<Record<number, string>> = {
  [-1]: "HASH_ERR_MISALIGNED",
  [-2]: "HASH_ERR_SHORT_HEADER",
  [-3]: "HASH_ERR_LAYOUT_VERSION",
  [-4]: "HASH_ERR_TABLES_OVERFLOW",
  [-5]: "HASH_ERR_BAD_OFFSETS",
  [-6]: "HASH_ERR_DATA_OVERFLOW",
  [-7]: "HASH_ERR_OUT_OF_MEMORY_BOUNDS",
};

interface HashKernelExports {
  readonly memory: WebAssembly.Memory;
  readonly regionOffset: () => number;
  readonly hashBatch: (ptr: number, len: number) => number;
  readonly HASH_BATCH_LAYOUT_VERSION: WebAssembly.Global;
  readonly HASH_BATCH_HEADER_BYTES: WebAssembly.Global;
}

/** Byte offsets, from the region start, of the parts of a batch of `count` records. */
export function hashBatchLayout(count: number, dataBytes: number): { outputOffset: number; dataOffset: number; totalBytes: number } {
  const outputOffset = (headerBytes + 4 * (count + 1) + 7) & ~7;
  const dataOffset = outputOffset + 8 * count;
  return { outputOffset, dataOffset, totalBytes: dataOffset + dataBytes };
}

let compiled: Promise<WebAssembly.Module> | undefined;

/** Compiles the module once per process; each hasher gets its own instance and memory. */
export async function loadRecordHasher(): Promise<RecordHasher> {
  compiled ??= Bun.file(wasmPath)
    .arrayBuffer()
    .then((bytes) => WebAssembly.compile(bytes));
  const instance = await WebAssembly.instantiate(await compiled, {});
  return new RecordHasher(instance.exports as unknown as HashKernelExports);
}

export class RecordHasher {
  readonly #kernel: HashKernelExports;
  /** Start of the batch region: 16-aligned, so the u32 and u64 tables inside are aligned. */
  readonly #regionPtr: number;
  // Views over memory.buffer; rebuilt after memory.grow, which detaches the old buffer.
  #bytes: Uint8Array;
  #words: Uint32Array;

  constructor(kernel: HashKernelExports) {
    assert(kernel.HASH_BATCH_LAYOUT_VERSION.value === layoutVersion, "hash kernel layout version differs from the loader's");
    assert(kernel.HASH_BATCH_HEADER_BYTES.value === headerBytes, "hash kernel header size differs from the loader's");
    this.#kernel = kernel;
    this.#regionPtr = kernel.regionOffset();
    assert(this.#regionPtr % 16 === 0, "hash kernel region must be 16-aligned");
    this.#bytes = new Uint8Array(kernel.memory.buffer);
    this.#words = new Uint32Array(kernel.memory.buffer);
  }

  /** Linear memory in use, for metrics; grows to fit the largest batch seen, never shrinks. */
  get memoryBytes(): number {
    return this.#kernel.memory.buffer.byteLength;
  }

  /**
   * Writes the XXH64 of each record, with `seed`, to out[0..count). Throws HashBatchLimitError
   * when the batch is over wasmLimits; the caller splits it.
   */
  hashBatch(batch: RecordBatch, out: BigUint64Array, seed = 0n): void {
    const { count, dataBytes } = batchShape(batch);
    checkSeed(seed);
    checkOutput(out, count);
    const layout = hashBatchLayout(count, dataBytes);
    this.#ensureRegion(layout.totalBytes);
    const ptr = this.#regionPtr;
    this.#words[ptr >>> 2] = count;
    this.#words[(ptr >>> 2) + 1] = layoutVersion;
    this.#words[(ptr >>> 2) + 2] = Number(seed & 0xffffffffn);
    this.#words[(ptr >>> 2) + 3] = Number(seed >> 32n);
    if (isPacked(batch)) {
      this.#words.set(batch.offsets.subarray(0, count + 1), (ptr + headerBytes) >>> 2);
      this.#bytes.set(batch.data.subarray(0, dataBytes), ptr + layout.dataOffset);
    } else {
      this.#copyRecords(batch, ptr + headerBytes, ptr + layout.dataOffset);
    }
    const status = this.#kernel.hashBatch(ptr, layout.totalBytes);
    assert(status === 0, () => `hash kernel rejected a batch the loader built: ${statusNames[status] ?? status}`);
    out.set(new BigUint64Array(this.#kernel.memory.buffer, ptr + layout.outputOffset, count));
  }

  #copyRecords(records: readonly Uint8Array[], offsetsPtr: number, dataPtr: number): void {
    const bytes = this.#bytes;
    const words = this.#words;
    const offsetsIndex = offsetsPtr >>> 2;
    let offset = 0;
    words[offsetsIndex] = 0;
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      const length = record.length;
      if (length < copyLoopBytesMax) {
        for (let j = 0; j < length; j++) bytes[dataPtr + offset + j] = record[j]!;
      } else {
        bytes.set(record, dataPtr + offset);
      }
      offset += length;
      words[offsetsIndex + i + 1] = offset;
    }
  }

  /** Grows linear memory so [regionPtr, regionPtr + bytes) exists; limits make this bounded. */
  #ensureRegion(bytes: number): void {
    const needed = this.#regionPtr + bytes;
    const memory = this.#kernel.memory;
    if (needed <= memory.buffer.byteLength) return;
    assert(needed <= wasmLimits.memoryBytesMax, () => `hash batch needs ${needed} bytes of linear memory, over wasmLimits.memoryBytesMax`);
    memory.grow(Math.ceil((needed - memory.buffer.byteLength) / pageBytes));
    this.#bytes = new Uint8Array(memory.buffer);
    this.#words = new Uint32Array(memory.buffer);
    assert(memory.buffer.byteLength >= needed, "linear memory did not grow to the batch size");
  }
}
