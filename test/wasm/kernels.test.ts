import { describe, expect, test } from "bun:test";
import { loadKernels } from "../../server/wasm/kernels.ts";

describe("node kernels", () => {
  test("load, pass their self-check against native XXH64, and hash like it afterwards", async () => {
    const kernels = await loadKernels();
    expect(kernels.status.recordHash.selfCheck).toBe("passed");
    const record = new TextEncoder().encode("Running Software CI");
    const out = new BigUint64Array(1);
    kernels.recordHasher.hashBatch([record], out, 7n);
    expect(out[0]).toBe(BigInt.asUintN(64, BigInt(Bun.hash.xxHash64(record, 7n))));
  });
});
