/**
 * @module Starts real opsconn node processes for tests (source via bun, or the compiled binary),
 * waits for the "node started" log line to learn the URL (port 0: no port races), and always cleans
 * up: every spawned process is killed and every temp directory removed by `cleanupAll()`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { runtimeEnvironment } from "../../server/constants.ts";

export const repoRoot = join(import.meta.dir, "../..");
export const bunPath = process.execPath;

const spawned = new Set<Subprocess>();
const tempDirs = new Set<string>();

export function tempDir(prefix = "opsconn-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export interface RunningNode {
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  readonly url: string;
  /** Every stdout line so far (JSON log lines). */
  readonly lines: string[];
}

/** `command` is e.g. [bunPath, "server/main.ts"] or ["dist/opsconn"]; `environment` is what the README asks a node to run with unless a test says otherwise. */
export async function startNode(command: readonly string[], args: readonly string[], timeoutMs = 10_000, environment: Readonly<Record<string, string>> = runtimeEnvironment): Promise<RunningNode> {
  const proc = Bun.spawn([...command, "node", "--port", "0", ...args], { cwd: repoRoot, env: { ...process.env, ...environment }, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  spawned.add(proc);
  const lines: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start within ${timeoutMs} ms: ${lines.join("\n")}`)), timeoutMs);
    void readLines(proc.stdout, (line) => {
      lines.push(line);
      const match = /"url":"(https?:\/\/[^"]+)"/.exec(line);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    }).then(() => {
      clearTimeout(timer);
      reject(new Error(`node exited before starting: ${lines.join("\n")}`));
    });
  });
  return { proc, url, lines };
}

/**
 * Registers a process started elsewhere (test/support/cluster.ts, bench/support/etcd.ts) so
 * `cleanupAll()` kills it too; one registry means one place that guarantees no process outlives a run.
 */
export function trackProcess(proc: Subprocess): void {
  spawned.add(proc);
}

/** Forgets a process that has exited and been reaped, so cleanup does not signal a reused pid. */
export function untrackProcess(proc: Subprocess): void {
  spawned.delete(proc);
}

/** Calls `onLine` for every line of a child's output stream; resolves when the stream ends. */
export function forEachLine(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  return readLines(stream, onLine);
}

/**
 * Distinct free TCP ports on 127.0.0.1, for processes that must know every peer's address before
 * any of them starts (--initial-cluster). All listeners stay open until every port is chosen so the
 * kernel cannot hand out one port twice; another process could still take one before the child
 * binds it, a small race that startup errors make visible.
 */
export function freePorts(count: number): number[] {
  const listeners = Array.from({ length: count }, () => Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }));
  const ports = listeners.map((listener) => listener.port);
  for (const listener of listeners) listener.stop(true);
  return ports;
}

let exitHookInstalled = false;

/**
 * For long-lived runners (benchmarks) outside bun:test's afterAll: kill every tracked process and
 * remove every temp dir when this process exits, including on SIGINT/SIGTERM, whose default action
 * would skip the "exit" event and leave orphans holding ports.
 */
export function installExitCleanup(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", cleanupAll);
  for (const [signal, exitCode] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.on(signal, () => {
      cleanupAll();
      process.exit(exitCode);
    });
  }
}

async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = "";
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      onLine(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
  }
}

/** Runs a CLI to completion; for usage/exit-code tests. */
export async function runCli(command: readonly string[], args: readonly string[]) {
  const proc = Bun.spawn([...command, ...args], { cwd: repoRoot, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  spawned.add(proc);
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  spawned.delete(proc);
  return { stdout, stderr, exitCode };
}

export function cleanupAll(): void {
  for (const proc of spawned) proc.kill("SIGKILL");
  spawned.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}
