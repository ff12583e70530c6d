/**
 * @module Starts real opsconn node processes for tests (source via bun, or the compiled binary),
 * waits for the "node started" log line to learn the URL (port 0: no port races), and always cleans
 * up: every spawned process is killed and every temp directory removed by `cleanupAll()`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

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

/** `command` is e.g. [bunPath, "server/main.ts"] or ["dist/opsconn"]. */
export async function startNode(command: readonly string[], args: readonly string[], timeoutMs = 10_000): Promise<RunningNode> {
  const proc = Bun.spawn([...command, "node", "--port", "0", ...args], { cwd: repoRoot, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  spawned.add(proc);
  const lines: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start within ${timeoutMs} ms: ${lines.join("\n")}`)), timeoutMs);
    void readLines(proc.stdout, (line) => {
      lines.push(line);
      const match = /"url":"(http:\/\/[^"]+)"/.exec(line);
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
