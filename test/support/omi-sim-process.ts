/**
 * @module The OMi receiver simulator as its own process (`opsconn omi-sim`), for multi-process
 * tests and benchmarks: started on a free port with a temp data directory, tracked for cleanup.
 */
import type { Subprocess } from "bun";
import { runtimeEnvironment } from "../../server/constants.ts";
import { bunPath, freePorts, repoRoot, tempDir, trackProcess } from "./node-process.ts";

export interface SimProcess {
  readonly url: string;
  readonly proc: Subprocess;
}

export async function startOmiSim(timeoutMs = 10_000): Promise<SimProcess> {
  const [port] = freePorts(1);
  // OPSCONN_CPU_PROFILE_DIR=dir: the simulator writes a CPU profile (markdown) there when it stops.
  const profileDir = process.env["OPSCONN_CPU_PROFILE_DIR"];
  const proc = Bun.spawn([bunPath, ...(profileDir ? ["--cpu-prof-md", `--cpu-prof-dir=${profileDir}`] : []), "server/main.ts", "omi-sim", "--port", String(port), "--data", tempDir()], { cwd: repoRoot, env: { ...process.env, ...runtimeEnvironment }, stdout: "ignore", stderr: "pipe" });
  trackProcess(proc as never);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await fetch(`${url}/omi-sim/stats`).catch(() => null))?.ok) return { url, proc };
    await Bun.sleep(50);
  }
  proc.kill("SIGKILL");
  throw new Error(`omi-sim did not start within ${timeoutMs} ms`);
}
