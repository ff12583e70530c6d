/**
 * @module The baseline: a real 3-member etcd (Debian's etcd-server binary) on loopback with free
 * ports, temp data dirs and etcd's default timing (heartbeat 100 ms, election 1000 ms), driven over
 * its JSON gateway (POST /v3/kv/put) by the same load generator as opsconn. The benchmarks never
 * install etcd: when the binary is missing they skip the etcd keys and say how to enable them.
 * Processes and dirs are registered with test/support/node-process.ts so they are always removed.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { forEachLine, freePorts, tempDir, trackProcess, untrackProcess } from "../../test/support/node-process.ts";

export const etcdInstallHint = "apt-get install etcd-server";

/** Path of the etcd binary, or null when it is not installed. */
export function findEtcd(): string | null {
  return Bun.which("etcd");
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  proc: Subprocess<"ignore", "pipe", "pipe"> | null;
  readonly output: string[];
}

const outputLinesMax = 200;
const pollIntervalMs = 20;
const requestTimeoutMs = 1_000;

export class EtcdCluster {
  constructor(
    readonly members: readonly EtcdMember[],
    private readonly binary: string,
    private readonly args: Map<string, readonly string[]>,
    private readonly dir: string,
  ) {}

  member(name: string): EtcdMember {
    const member = this.members.find((m) => m.name === name);
    if (member === undefined) throw new Error(`no etcd member '${name}'`);
    return member;
  }

  clientUrls(): string[] {
    return this.members.filter((m) => m.proc !== null).map((m) => m.clientUrl);
  }

  /**
   * The running member that is the leader: each member's maintenance status names the leader's
   * member id; the leader is the one whose own id (header.member_id) equals it.
   */
  async leader(): Promise<EtcdMember | null> {
    const running = this.members.filter((m) => m.proc !== null);
    const statuses = await Promise.all(running.map((m) => memberStatus(m.clientUrl)));
    for (const [i, s] of statuses.entries()) {
      if (s !== null && s.leader !== "0" && s.leader === s.memberId) return running[i] ?? null;
    }
    return null;
  }

  async waitForLeader(timeoutMs = 15_000): Promise<EtcdMember> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const leader = await this.leader();
      if (leader !== null) return leader;
      if (performance.now() > deadline) throw new Error(`etcd: no leader within ${timeoutMs} ms\n${this.diagnostics()}`);
      await Bun.sleep(pollIntervalMs);
    }
  }

  async kill(name: string, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const member = this.member(name);
    const proc = member.proc;
    if (proc === null) return;
    proc.kill(signal);
    const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(5_000).then(() => false)]);
    if (!exited) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
    untrackProcess(proc);
    member.proc = null;
  }

  /** Restarts a killed member on its existing data dir (etcd then ignores the --initial-* flags). */
  async restart(name: string, timeoutMs = 15_000): Promise<void> {
    const member = this.member(name);
    if (member.proc !== null) throw new Error(`etcd member ${name} is still running`);
    spawnMember(member, this.binary, this.args.get(name) ?? []);
    await waitListening(member, timeoutMs);
  }

  /** Waits until every running member has applied the leader's current revision's raft index. */
  async waitForCaughtUp(timeoutMs = 15_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    const leader = await this.waitForLeader(timeoutMs);
    const target = (await memberStatus(leader.clientUrl))?.raftIndex ?? 0;
    for (;;) {
      const statuses = await Promise.all(this.members.filter((m) => m.proc !== null).map((m) => memberStatus(m.clientUrl)));
      if (statuses.every((s) => s !== null && s.raftAppliedIndex >= target)) return;
      if (performance.now() > deadline) throw new Error(`etcd members did not catch up to ${target} within ${timeoutMs} ms\n${this.diagnostics()}`);
      await Bun.sleep(pollIntervalMs);
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.members.map((m) => this.kill(m.name, "SIGTERM")));
    rmSync(this.dir, { recursive: true, force: true });
  }

  diagnostics(linesPerMember = 20): string {
    return this.members.flatMap((m) => [`--- etcd ${m.name} (${m.clientUrl}, ${m.proc === null ? "stopped" : `pid ${m.proc.pid}`})`, ...m.output.slice(-linesPerMember)]).join("\n");
  }
}

interface MemberStatus {
  readonly memberId: string;
  readonly leader: string;
  readonly raftIndex: number;
  readonly raftAppliedIndex: number;
}

/** POST /v3/maintenance/status; uint64 fields arrive as JSON strings from the gateway. */
async function memberStatus(clientUrl: string): Promise<MemberStatus | null> {
  try {
    const response = await fetch(`${clientUrl}/v3/maintenance/status`, { method: "POST", body: "{}", signal: AbortSignal.timeout(requestTimeoutMs) });
    if (!response.ok) return null;
    const body = (await response.json()) as { header?: { member_id?: string }; leader?: string; raftIndex?: string; raftAppliedIndex?: string };
    if (body.header?.member_id === undefined) return null;
    return { memberId: body.header.member_id, leader: body.leader ?? "0", raftIndex: Number(body.raftIndex ?? 0), raftAppliedIndex: Number(body.raftAppliedIndex ?? 0) };
  } catch {
    return null;
  }
}

function spawnMember(member: EtcdMember, binary: string, args: readonly string[]): void {
  const proc = Bun.spawn([binary, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  trackProcess(proc);
  member.proc = proc;
  const keep = (line: string) => {
    member.output.push(line);
    if (member.output.length > outputLinesMax) member.output.splice(0, member.output.length - outputLinesMax);
  };
  void forEachLine(proc.stdout, keep);
  void forEachLine(proc.stderr, keep);
}

/** GET /version answers as soon as the client listener is up, before there is a leader. */
async function waitListening(member: EtcdMember, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const proc = member.proc;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) throw new Error(`etcd ${member.name} exited during start\n${member.output.join("\n")}`);
    try {
      const response = await fetch(`${member.clientUrl}/version`, { signal: AbortSignal.timeout(requestTimeoutMs) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`etcd ${member.name} not listening within ${timeoutMs} ms\n${member.output.join("\n")}`);
    await Bun.sleep(pollIntervalMs);
  }
}

/** Starts a fresh `size`-member etcd cluster and waits for its leader. */
export async function startEtcd(options: { readonly binary: string; readonly size?: number }): Promise<EtcdCluster> {
  const size = options.size ?? 3;
  const dir = tempDir("opsconn-etcd-");
  const ports = freePorts(size * 2);
  const members: EtcdMember[] = Array.from({ length: size }, (_, i) => ({
    name: `e${i + 1}`,
    clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
    peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
    dataDir: join(dir, `e${i + 1}`),
    proc: null,
    output: [],
  }));
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
  const args = new Map<string, readonly string[]>();
  for (const m of members) {
    mkdirSync(m.dataDir, { recursive: true, mode: 0o700 });
    args.set(m.name, [
      ...["--name", m.name, "--data-dir", m.dataDir],
      ...["--listen-client-urls", m.clientUrl, "--advertise-client-urls", m.clientUrl],
      ...["--listen-peer-urls", m.peerUrl, "--initial-advertise-peer-urls", m.peerUrl],
      ...["--initial-cluster", initialCluster, "--initial-cluster-state", "new", "--initial-cluster-token", `bench-${process.pid}`],
      ...["--logger", "zap", "--log-level", "warn"],
    ]);
  }
  const cluster = new EtcdCluster(members, options.binary, args, dir);
  try {
    for (const m of members) spawnMember(m, options.binary, args.get(m.name) ?? []);
    await Promise.all(members.map((m) => waitListening(m, 15_000)));
    await cluster.waitForLeader();
  } catch (error) {
    await cluster.stopAll();
    throw error;
  }
  return cluster;
}

/**
 * Runs `measure` against a fresh 3-member etcd and always stops it; prints its diagnostics if the
 * measurement fails. Without etcd installed, says how to enable the comparison and returns false.
 */
export async function withEtcd(measure: (etcd: EtcdCluster) => Promise<void>): Promise<boolean> {
  const binary = findEtcd();
  if (binary === null) {
    console.log(`  etcd: not installed; etcd_* keys skipped (enable with: ${etcdInstallHint})`);
    return false;
  }
  const etcd = await startEtcd({ binary });
  try {
    await measure(etcd);
    return true;
  } catch (error) {
    console.error(etcd.diagnostics());
    throw error;
  } finally {
    await etcd.stopAll();
  }
}
