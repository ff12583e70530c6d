/**
 * @module Record hash throughput: the WASM XXH64 kernel (one call per batch, copy-in included)
 * against its pure-TS twin and against Bun's native xxHash3 called once per record, on the same
 * 10,000 seeded 64-byte records (the size of a small CI record). Rounds alternate between the
 * three so drift (turbo, thermal, GC) hits them alike; each gets about two seconds in total.
 * MB/s counts record bytes only, MB = 10^6 bytes.
 */
import { assert } from "../server/assert.ts";
import { loadRecordHasher } from "../server/wasm/hash-kernel.ts";
import { hashBatchTwin } from "../server/wasm/hash-twin.ts";
import { seededBytes, type Bench, type Metrics } from "./harness.ts";

const recordBytes = 64;
const batchRecords = 10_000;
const inputSeed = 0x5eed;
const roundsCount = 8;
/** Per implementation per round; 8 rounds x 250 ms = 2 s each, about 6.5 s with warm-up. */
const roundMs = 250;
const warmupMs = 150;

type BatchFn = (records: readonly Uint8Array[], out: BigUint64Array) => void;

function nativeBatch(records: readonly Uint8Array[], out: BigUint64Array): void {
  for (let i = 0; i < records.length; i++) out[i] = Bun.hash.xxHash3(records[i]!);
}

/** Runs fn on the batch until `ms` have passed; returns [batches, seconds]. */
function timeFor(fn: BatchFn, records: readonly Uint8Array[], out: BigUint64Array, ms: number): [number, number] {
  const start = Bun.nanoseconds();
  const deadline = start + ms * 1e6;
  let batches = 0;
  // Bounded by the deadline; at least one batch so a slow implementation still reports.
  do {
    fn(records, out);
    batches++;
  } while (Bun.nanoseconds() < deadline);
  return [batches, (Bun.nanoseconds() - start) / 1e9];
}

export default {
  name: "hash",
  async run(): Promise<Metrics> {
    const data = seededBytes(inputSeed, recordBytes * batchRecords);
    const records = Array.from({ length: batchRecords }, (_, i) => data.subarray(i * recordBytes, (i + 1) * recordBytes));
    const hasher = await loadRecordHasher();
    const out = new BigUint64Array(batchRecords);
    const implementations: Record<string, BatchFn> = {
      wasm: (r, o) => hasher.hashBatch(r, o),
      ts: (r, o) => hashBatchTwin(r, o),
      native: nativeBatch,
    };
    const check = new BigUint64Array(batchRecords);
    hasher.hashBatch(records, out);
    hashBatchTwin(records, check);
    assert(out.every((h, i) => h === check[i]), "wasm and twin disagree on the benchmark input");

    const totals = Object.fromEntries(Object.keys(implementations).map((k) => [k, { batches: 0, seconds: 0 }]));
    for (const fn of Object.values(implementations)) timeFor(fn, records, out, warmupMs);
    for (let round = 0; round < roundsCount; round++) {
      for (const [key, fn] of Object.entries(implementations)) {
        const [batches, seconds] = timeFor(fn, records, out, roundMs);
        totals[key]!.batches += batches;
        totals[key]!.seconds += seconds;
      }
    }
    const mbPerS = (key: string): number => {
      const t = totals[key]!;
      return Math.round((t.batches * batchRecords * recordBytes) / t.seconds / 1e6);
    };
    return { wasm_mb_per_s: mbPerS("wasm"), ts_mb_per_s: mbPerS("ts"), native_mb_per_s: mbPerS("native") };
  },
} satisfies Bench;
