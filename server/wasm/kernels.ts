/**
 * @module The node's WebAssembly kernels, loaded once at start and checked against an independent
 * implementation (Bun's native XXH64) on fixed records, so a damaged or mismatched module stops the
 * node at boot instead of corrupting fingerprints later (topology delta detection keys on them).
 */
import { loadRecordHasher, type RecordHasher } from "./hash-kernel.ts";

export interface KernelStatus {
  readonly recordHash: { readonly runtime: "wasm"; readonly algorithm: "xxh64"; readonly selfCheck: "passed" };
}

export interface Kernels {
  readonly recordHasher: RecordHasher;
  readonly status: KernelStatus;
}

export class KernelSelfCheckError extends Error {
  override readonly name = "KernelSelfCheckError";
}

/** Records of every length class the kernel treats differently (0, <4, <8, <32, ≥32 bytes). */
function selfCheckRecords(): Uint8Array[] {
  const lengths = [0, 1, 3, 4, 7, 8, 31, 32, 33, 64, 100, 1000];
  return lengths.map((length) => Uint8Array.from({ length }, (_, i) => (i * 131 + length) & 0xff));
}

export async function loadKernels(): Promise<Kernels> {
  const recordHasher = await loadRecordHasher();
  const records = selfCheckRecords();
  const seed = 0x9e3779b97f4a7c15n;
  const out = new BigUint64Array(records.length);
  recordHasher.hashBatch(records, out, seed);
  records.forEach((record, i) => {
    const expected = BigInt.asUintN(64, BigInt(Bun.hash.xxHash64(record, seed)));
    if (out[i] !== expected) throw new KernelSelfCheckError(`record hash kernel disagrees with native XXH64 on a ${record.length}-byte record`);
  });
  return { recordHasher, status: { recordHash: { runtime: "wasm", algorithm: "xxh64", selfCheck: "passed" } } };
}
