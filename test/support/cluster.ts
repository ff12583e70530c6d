/**
 * @module A multi-process opsconn group on 127.0.0.1 for tests in test/it and the cluster
 * benchmarks: N real `opsconn node` processes founded with one --initial-cluster on ports chosen up
 * front, each with its own temp data dir and a shared secret. Every wait is bounded and fails with
 * the tail of each node's stdout/stderr, because a multi-process failure is undiagnosable without
 * it. Processes and dirs are registered with node-process.ts so `cleanupAll()` removes them even
 * when a test forgets `stopAll()`.
 */
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { runtimeEnvironment } from "../../server/constants.ts";
import { bunPath, forEachLine, freePorts, repoRoot, tempDir, trackProcess, untrackProcess } from "./node-process.ts";

export interface ClusterOptions {
  readonly size: number;
  /** Parent directory for the node data dirs; a fresh temp dir when absent. */
  readonly dir?: string;
  /** Appended to every node's command line (e.g. Raft timing flags). */
  readonly extraArgs?: readonly string[];
  /** How to run opsconn; default the source through bun. */
  readonly command?: readonly string[];
  readonly logLevel?: "debug" | "info" | "warn" | "error";
  /** Bound on each node's start (process up and /healthz answering). */
  readonly startTimeoutMs?: number;
  /** Node ids are `${idPrefix}1..N`. */
  readonly idPrefix?: string;
}

/** The part of GET /api/v1/status this launcher relies on (the lead's contract). */
export interface RaftStatus {
  readonly role: string;
  readonly term: number;
  readonly leader: string | null;
  readonly commit: number;
  readonly applied: number;
  readonly stats?: { readonly readies: number; readonly transactions: number; readonly entriesPersisted: number };
}

export interface NodeStatusBody {
  readonly nodeId: string;
  readonly raft: RaftStatus;
}

export interface ClusterNode {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  readonly dataDir: string;
  /** Null while the node is killed or stopped. */
  proc: Subprocess<"ignore", "pipe", "pipe"> | null;
  /** The last `outputLinesMax` lines of stdout and stderr across restarts, for diagnostics. */
  readonly output: string[];
  starts: number;
}

const outputLinesMax = 400;
const pollIntervalMs = 20;
const statusRequestTimeoutMs = 1_000;
const exitWaitMs = 5_000;

export class Cluster {
  private readonly args: Map<string, readonly string[]>;
  private stopped = false;

  constructor(
    readonly nodes: readonly ClusterNode[],
    private readonly command: readonly string[],
    args: Map<string, readonly string[]>,
    private readonly startTimeoutMs: number,
    private readonly ownedDirs: readonly string[],
    /** The shared peer secret, for tests that start an extra node with --join. */
    readonly secret: string,
  ) {
    this.args = args;
  }

  node(id: string): ClusterNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node '${id}' in cluster (${this.nodes.map((n) => n.id).join(", ")})`);
    return node;
  }

  running(): ClusterNode[] {
    return this.nodes.filter((n) => n.proc !== null);
  }

  urls(): string[] {
    return this.running().map((n) => n.url);
  }

  /** One node's status, or null when it does not answer within the bound (dead, busy, starting). */
  async status(id: string, timeoutMs = statusRequestTimeoutMs): Promise<NodeStatusBody | null> {
    const node = this.node(id);
    if (node.proc === null) return null;
    try {
      const response = await fetch(`${node.url}/api/v1/status`, { signal: AbortSignal.timeout(timeoutMs) });
      if (!response.ok) return null;
      const body = (await response.json()) as Partial<NodeStatusBody>;
      return body.raft === undefined ? null : (body as NodeStatusBody);
    } catch {
      return null;
    }
  }

  /**
   * The running node that says it leads, in the highest term any running node reports. A deposed
   * leader that has not heard of the newer term yet is not returned: its term is lower.
   */
  async leader(): Promise<ClusterNode | null> {
    const running = this.running();
    const statuses = await Promise.all(running.map((n) => this.status(n.id)));
    const termMax = Math.max(0, ...statuses.map((s) => s?.raft.term ?? 0));
    for (const [i, s] of statuses.entries()) {
      if (s?.raft.role === "leader" && s.raft.term === termMax) return running[i] ?? null;
    }
    return null;
  }

  async waitForLeader(timeoutMs = 10_000): Promise<ClusterNode> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      this.assertRunningAlive();
      const leader = await this.leader();
      if (leader !== null) return leader;
      if (performance.now() > deadline) throw new Error(`no leader within ${timeoutMs} ms\n${await this.diagnostics()}`);
      await Bun.sleep(pollIntervalMs);
    }
  }

  /**
   * Waits until every running node has applied at least what the group had acknowledged when the
   * wait began: a restarted node has caught up, so the next trial starts from a healthy group.
   */
  async waitForCaughtUp(timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    const target = await this.acknowledgedIndex(timeoutMs);
    for (;;) {
      const statuses = await Promise.all(this.running().map((n) => this.status(n.id)));
      if (statuses.every((s) => s !== null && s.raft.applied >= target)) return;
      if (performance.now() > deadline) throw new Error(`nodes did not apply index ${target} within ${timeoutMs} ms: ${JSON.stringify(statuses.map((s) => s?.raft ?? null))}\n${await this.diagnostics()}`);
      await Bun.sleep(pollIntervalMs);
    }
  }

  /**
   * The leader's commit index once it covers everything acknowledged so far. A new leader's commit
   * can trail its predecessor's until it commits in its own term, so a linearizable read (its read
   * barrier waits for that) comes first; it is retried across an election.
   */
  private async acknowledgedIndex(timeoutMs: number): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const leader = await this.waitForLeader(Math.max(1, deadline - performance.now()));
      const read = await fetch(`${leader.url}/api/v1/kv/caught-up-probe`, { signal: AbortSignal.timeout(statusRequestTimeoutMs) }).catch(() => null);
      const commit = (await this.status(leader.id))?.raft.commit;
      if ((read?.status === 200 || read?.status === 404) && commit !== undefined) return commit;
      if (performance.now() > deadline) throw new Error(`no linearizable read on the leader within ${timeoutMs} ms (last: ${read?.status ?? "no answer"})\n${await this.diagnostics()}`);
      await Bun.sleep(pollIntervalMs);
    }
  }

  /** Sends `signal` and waits (bounded) for the exit, so a restart can reuse the port and files. */
  async kill(id: string, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const node = this.node(id);
    const proc = node.proc;
    if (proc === null) return;
    proc.kill(signal);
    const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(exitWaitMs).then(() => false)]);
    if (!exited) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
    untrackProcess(proc);
    node.proc = null;
  }

  /** Starts a killed node again with the same id, port, data dir and flags. */
  async restart(id: string): Promise<void> {
    const node = this.node(id);
    if (node.proc !== null) throw new Error(`node ${id} is still running (pid ${node.proc.pid}); kill it first`);
    const args = this.args.get(id);
    if (args === undefined) throw new Error(`no command line recorded for ${id}`);
    spawnNode(node, this.command, args);
    await waitHealthy(node, this.startTimeoutMs);
  }

  /** Resident set size of a running node in bytes (Linux /proc), for memory benchmarks. */
  rssBytes(id: string): number {
    const proc = this.node(id).proc;
    if (proc === null) throw new Error(`node ${id} is not running`);
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"));
    if (match?.[1] === undefined) throw new Error(`no VmRSS for pid ${proc.pid}`);
    return Number(match[1]) * 1024;
  }

  /** SIGTERM, then SIGKILL after a grace period; removes the data dirs this cluster created. */
  async stopAll(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.nodes.map((n) => this.kill(n.id, "SIGTERM")));
    for (const dir of this.ownedDirs) rmSync(dir, { recursive: true, force: true });
  }

  /** The tail of every node's output and exit state: what a failed test should print. */
  async diagnostics(linesPerNode = 40): Promise<string> {
    const parts: string[] = [];
    for (const node of this.nodes) {
      const state = node.proc === null ? "stopped" : node.proc.exitCode !== null || node.proc.signalCode !== null ? `exited ${node.proc.exitCode ?? node.proc.signalCode}` : `pid ${node.proc.pid}`;
      parts.push(`--- ${node.id} (${node.url}, ${state}, starts ${node.starts})`, ...node.output.slice(-linesPerNode));
    }
    return parts.join("\n");
  }

  private assertRunningAlive(): void {
    for (const node of this.running()) {
      const proc = node.proc;
      if (proc !== null && (proc.exitCode !== null || proc.signalCode !== null)) {
        throw new Error(`node ${node.id} exited unexpectedly (${proc.exitCode ?? proc.signalCode})\n${node.output.slice(-40).join("\n")}`);
      }
    }
  }
}

function spawnNode(node: ClusterNode, command: readonly string[], args: readonly string[]): void {
  const proc = Bun.spawn([...command, ...args], { cwd: repoRoot, env: { ...process.env, ...runtimeEnvironment }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  trackProcess(proc);
  node.proc = proc;
  node.starts += 1;
  const keep = (stream: string) => (line: string) => {
    node.output.push(`[${node.id}#${node.starts} ${stream}] ${line}`);
    if (node.output.length > outputLinesMax) node.output.splice(0, node.output.length - outputLinesMax);
  };
  // Always drain both pipes: a child blocks once a pipe buffer fills.
  void forEachLine(proc.stdout, keep("out"));
  void forEachLine(proc.stderr, keep("err"));
}

/** Polls /healthz until 200; fails early, with the node's output, if the process exits. */
async function waitHealthy(node: ClusterNode, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const proc = node.proc;
    if (proc === null) throw new Error(`node ${node.id} was stopped while starting`);
    if (proc.exitCode !== null || proc.signalCode !== null) {
      await Bun.sleep(50); // let the pipes deliver the last lines
      throw new Error(`node ${node.id} exited during start (${proc.exitCode ?? proc.signalCode})\n${node.output.join("\n")}`);
    }
    try {
      const response = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(statusRequestTimeoutMs) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`node ${node.id} not healthy within ${timeoutMs} ms\n${node.output.join("\n")}`);
    await Bun.sleep(pollIntervalMs);
  }
}

/** Starts `size` founders and waits until each answers /healthz (not for a leader: see waitForLeader). */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  if (!Number.isInteger(options.size) || options.size < 1 || options.size > 9) throw new Error(`cluster size must be 1..9, got ${options.size}`);
  const parent = options.dir ?? tempDir("opsconn-cluster-");
  const ports = freePorts(options.size);
  const idPrefix = options.idPrefix ?? "n";
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("hex");
  const nodes: ClusterNode[] = ports.map((port, i) => ({
    id: `${idPrefix}${i + 1}`,
    port,
    url: `http://127.0.0.1:${port}`,
    dataDir: join(parent, `${idPrefix}${i + 1}`),
    proc: null,
    output: [],
    starts: 0,
  }));
  const initialCluster = nodes.map((n) => `${n.id}=127.0.0.1:${n.port}`).join(",");
  const args = new Map<string, readonly string[]>();
  for (const node of nodes) {
    mkdirSync(node.dataDir, { recursive: true });
    args.set(node.id, [
      "node",
      ...["--node-id", node.id, "--host", "127.0.0.1", "--port", String(node.port), "--data-dir", node.dataDir],
      ...["--initial-cluster", initialCluster, "--cluster-secret", secret, "--log-level", options.logLevel ?? "warn"],
      ...(options.extraArgs ?? []),
    ]);
  }
  // OPSCONN_CPU_PROFILE_DIR=dir: each node writes a CPU profile (markdown) there when it stops.
  const profileDir = process.env["OPSCONN_CPU_PROFILE_DIR"];
  const command = options.command ?? [bunPath, ...(profileDir ? ["--cpu-prof-md", `--cpu-prof-dir=${profileDir}`] : []), "server/main.ts"];
  const startTimeoutMs = options.startTimeoutMs ?? 15_000;
  const cluster = new Cluster(nodes, command, args, startTimeoutMs, options.dir === undefined ? [parent] : nodes.map((n) => n.dataDir), secret);
  try {
    for (const node of nodes) spawnNode(node, command, args.get(node.id) ?? []);
    await Promise.all(nodes.map((n) => waitHealthy(n, startTimeoutMs)));
  } catch (error) {
    await cluster.stopAll();
    throw error;
  }
  return cluster;
}
