/**
 * The single binary as shipped: `npm run build` output, run from a directory without the source
 * tree, serves /healthz and stops cleanly on SIGTERM. `npm test` builds it first; when run alone
 * this test builds it into a temp dir.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { bunPath, cleanupAll, repoRoot, runCli, startNode, tempDir } from "../support/node-process.ts";
import { lifecycle } from "../../server/constants.ts";

afterAll(cleanupAll);
let binary = "";

beforeAll(async () => {
  const built = join(repoRoot, "dist/opsconn");
  const dir = tempDir("opsconn-bin-");
  binary = join(dir, "opsconn");
  if (existsSync(built)) copyFileSync(built, binary);
  else expect((await runCli([bunPath, "scripts/build-binary.ts"], [binary])).exitCode).toBe(0);
}, 120_000);

describe("dist/opsconn", () => {
  test("--help runs", async () => {
    const { stdout, exitCode } = await runCli([binary], ["--help"]);
    expect(exitCode).toBe(0);
    expect(stdout).toContain("Usage:");
  });

  test("starts a node that serves /healthz and stops on SIGTERM within the grace period", async () => {
    const dataDir = tempDir();
    const node = await startNode([binary], ["--data-dir", dataDir, "--node-id", "bin-1"]);
    const health = await fetch(`${node.url}/healthz`);
    expect(await health.json()).toEqual({ status: "ok" });
    const status = (await (await fetch(`${node.url}/api/v1/status`)).json()) as { nodeId: string; dataDir: string; kernels: unknown };
    expect(status.nodeId).toBe("bin-1");
    expect(status.dataDir).toBe(dataDir);
    // The WASM kernel travelled inside the binary and passed its self-check at start.
    expect(status.kernels).toEqual({ recordHash: { runtime: "wasm", algorithm: "xxh64", selfCheck: "passed" } });
    const stoppedAt = performance.now();
    node.proc.kill("SIGTERM");
    expect(await node.proc.exited).toBe(0);
    expect(performance.now() - stoppedAt).toBeLessThan(lifecycle.shutdownGraceMs);
    expect(existsSync(join(dataDir, "opsconn.db"))).toBe(true);
  }, 20_000);
});
