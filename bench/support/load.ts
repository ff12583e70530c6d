/**
 * @module Closed-loop HTTP load generator for the cluster benchmarks. C clients each issue one
 * request at a time over their own keep-alive connections (http-client.ts explains why not fetch),
 * round-robin over the target URLs, for a duration or a
 * request count; each success records its latency from the first attempt, so a retried request
 * shows what its caller waited. Errors (non-2xx, network) are counted; the retryable ones (503 no
 * leader, 504 outcome unknown, connection refused or reset) are retried against the next target,
 * which is the documented client behaviour for both opsconn and etcd. Workloads are data, not
 * closures, so `runLoadParallel` can hand the same plan to worker processes (load-worker.ts) when
 * one event loop would be the bottleneck, and merge their latencies.
 */
import { join } from "node:path";
import { bunPath, forEachLine, trackProcess, untrackProcess } from "../../test/support/node-process.ts";
import { seededBytes } from "../harness.ts";
import { HttpConnection } from "./http-client.ts";

/** What one request writes. Keys cycle through `keySpace` per client so state stays bounded. */
export type Workload =
  | { readonly kind: "opsconn-put"; readonly valueBytes: number; readonly keySpace: number }
  | { readonly kind: "opsconn-batch"; readonly items: number; readonly valueBytes: number; readonly keySpace: number }
  | { readonly kind: "etcd-put"; readonly valueBytes: number; readonly keySpace: number }
  /** Events to a listener path (JSON, event_data's fields), `events` per request, each with its own key. */
  | { readonly kind: "opsconn-events"; readonly path: string; readonly events: number };

export interface LoadOptions {
  readonly targets: readonly string[];
  readonly clients: number;
  readonly workload: Workload;
  /** Upper bound on the run; the run also ends at `requestsMax` successes. */
  readonly durationMs: number;
  readonly requestsMax?: number;
  /** Successes completing in the first `warmupMs` are not measured (connections, JIT, caches). */
  readonly warmupMs?: number;
  readonly requestTimeoutMs?: number;
  /** Attempts per request, first included; a request that exhausts them is a failure. */
  readonly attemptsMax?: number;
  readonly retryBackoffMs?: number;
  /**
   * "rotate" (the default): each request goes to the next target, as etcd 3.4's client balances
   * RPCs round-robin over its endpoints (the replication and failover benchmarks compare with it).
   * "pinned": each client keeps to one target, moving on only after a failed attempt worth
   * retrying, as an event source posts to the one connector URL it is configured with.
   */
  readonly targetChoice?: "rotate" | "pinned";
  /** First client index, so worker processes write disjoint keys. */
  readonly clientBase?: number;
  readonly seed?: number;
}

export interface AttemptRecord {
  readonly startMs: number;
  readonly endMs: number;
  readonly ok: boolean;
  /** HTTP status, or 0 for a network error or timeout. */
  readonly status: number;
  readonly target: string;
}

export interface LoadResult {
  /** Successful requests completed inside the measured window. */
  readonly requests: number;
  /** Failed attempts (each retry that failed counts once). */
  readonly errors: number;
  /** Requests that exhausted their attempts. */
  readonly failures: number;
  readonly windowMs: number;
  readonly requestsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Sorted; kept for merging across worker processes. */
  readonly latenciesMs: Float64Array;
  /** Error statuses seen (0 = network), for diagnostics. */
  readonly errorStatuses: Readonly<Record<string, number>>;
}

interface BuiltRequest {
  readonly path: string;
  readonly method: "PUT" | "POST";
  readonly body: string;
  readonly contentType: string;
}

type RequestBuilder = (client: number, seq: number) => BuiltRequest;

/** ASCII value of exactly `valueBytes` bytes (hex of seeded bytes), so UTF-8 and raw sizes agree. */
export function benchValue(seed: number, valueBytes: number): string {
  return Buffer.from(seededBytes(seed, Math.ceil(valueBytes / 2))).toString("hex").slice(0, valueBytes);
}

function builder(workload: Workload, seed: number): RequestBuilder {
  const value = benchValue(seed, "valueBytes" in workload ? workload.valueBytes : 128);
  switch (workload.kind) {
    case "opsconn-put":
      return (client, seq) => ({ path: `/api/v1/kv/bench-${client}-${seq % workload.keySpace}`, method: "PUT", body: value, contentType: "application/octet-stream" });
    case "opsconn-batch": {
      const valueJson = JSON.stringify(value);
      return (client, seq) => {
        const parts: string[] = [];
        for (let i = 0; i < workload.items; i++) parts.push(`{"key":"batch-${client}-${(seq * workload.items + i) % workload.keySpace}","value":${valueJson}}`);
        return { path: "/api/v1/kv", method: "POST", body: `{"items":[${parts.join(",")}]}`, contentType: "application/json" };
      };
    }
    case "opsconn-events":
      return (client, seq) => {
        const parts: string[] = [];
        for (let i = 0; i < workload.events; i++) {
          const n = seq * workload.events + i;
          parts.push(`{"title":"load ${client}/${n}","severity":"major","omi_event_key":"c${client}:${n}","description":"${value}"}`);
        }
        return { path: `/bsmc/rest/events/${workload.path}`, method: "POST", body: `[${parts.join(",")}]`, contentType: "application/json" };
      };
    case "etcd-put": {
      const valueB64 = Buffer.from(value).toString("base64");
      return (client, seq) => ({
        path: "/v3/kv/put",
        method: "POST",
        body: `{"key":"${Buffer.from(`bench-${client}-${seq % workload.keySpace}`).toString("base64")}","value":"${valueB64}"}`,
        contentType: "application/json",
      });
    }
    default:
      return unreachable(workload);
  }
}

function unreachable(value: never): never {
  throw new Error(`unreachable: ${JSON.stringify(value)}`);
}

/** Bound on the connect phase; beyond it the stragglers connect on their first request. */
const connectPhaseMs = 5_000;

const retryableStatuses = new Set([0, 502, 503, 504]);

/**
 * One in-process run that the caller can steer while it goes: replace the targets (failover: drop
 * the killed node), observe every attempt, or stop early.
 */
export class LoadRun {
  private targets: string[];
  private stopped = false;
  private readonly samples: number[] = [];
  private errors = 0;
  private failures = 0;
  private successes = 0;
  private readonly errorStatuses: Record<string, number> = {};
  private readonly listeners: ((record: AttemptRecord) => void)[] = [];
  private windowStartMs = 0;
  private lastMeasuredEndMs = 0;
  readonly done: Promise<LoadResult>;

  constructor(private readonly options: LoadOptions) {
    if (options.targets.length === 0) throw new Error("load: no targets");
    if (!Number.isInteger(options.clients) || options.clients < 1 || options.clients > 4096) throw new Error(`load: clients must be 1..4096, got ${options.clients}`);
    if (!(options.durationMs > 0 && options.durationMs <= 600_000)) throw new Error(`load: durationMs must be in (0, 600000], got ${options.durationMs}`);
    this.targets = [...options.targets];
    this.done = this.run();
  }

  setTargets(targets: readonly string[]): void {
    if (targets.length === 0) throw new Error("load: no targets");
    this.targets = [...targets];
  }

  onAttempt(listener: (record: AttemptRecord) => void): void {
    this.listeners.push(listener);
  }

  stop(): void {
    this.stopped = true;
  }

  private async run(): Promise<LoadResult> {
    const build = builder(this.options.workload, this.options.seed ?? 1);
    const pools = await this.openConnections();
    const startMs = performance.now();
    this.windowStartMs = startMs + (this.options.warmupMs ?? 0);
    this.lastMeasuredEndMs = this.windowStartMs;
    const deadlineMs = startMs + this.options.durationMs;
    const base = this.options.clientBase ?? 0;
    await Promise.all(pools.map((pool, i) => this.client(base + i, i, pool, build, deadlineMs)));
    const latenciesMs = Float64Array.from(this.samples).sort();
    const windowMs = Math.max(1, this.lastMeasuredEndMs - this.windowStartMs);
    return {
      requests: latenciesMs.length,
      errors: this.errors,
      failures: this.failures,
      windowMs,
      requestsPerS: (latenciesMs.length * 1000) / windowMs,
      p50Ms: quantile(latenciesMs, 0.5),
      p99Ms: quantile(latenciesMs, 0.99),
      maxMs: latenciesMs.length === 0 ? NaN : (latenciesMs[latenciesMs.length - 1] ?? NaN),
      latenciesMs,
      errorStatuses: { ...this.errorStatuses },
    };
  }

  /**
   * Every client connects to every target it will use (a pinned client: the one it starts on) before
   * the clock starts. Opening hundreds of sockets at once can overflow a listen backlog, and a
   * dropped SYN is retried only after 1 s: measured as a 1.3 s p99 outlier when connections were
   * opened lazily inside the window.
   */
  private async openConnections(): Promise<Map<string, HttpConnection>[]> {
    const pools = Array.from({ length: this.options.clients }, () => new Map<string, HttpConnection>());
    const opening: Promise<void>[] = [];
    const pinned = this.options.targetChoice === "pinned";
    pools.forEach((pool, i) => {
      for (const target of pinned ? [this.targets[i % this.targets.length]!] : this.targets) {
        const url = new URL(target);
        const connection = new HttpConnection(url.hostname, Number(url.port));
        pool.set(target, connection);
        // A target that refuses (a killed node) is simply retried later by the request path.
        opening.push(connection.open().catch(() => undefined));
      }
    });
    await Promise.race([Promise.all(opening), Bun.sleep(connectPhaseMs)]);
    return pools;
  }

  private async client(client: number, offset: number, connections: Map<string, HttpConnection>, build: RequestBuilder, deadlineMs: number): Promise<void> {
    try {
      await this.clientLoop(client, offset, connections, build, deadlineMs);
    } finally {
      for (const connection of connections.values()) connection.close();
    }
  }

  /** Offsetting each client's first target spreads clients over targets, not just requests (see targetChoice). */
  private async clientLoop(client: number, firstTurn: number, connections: Map<string, HttpConnection>, build: RequestBuilder, deadlineMs: number): Promise<void> {
    const attemptsMax = this.options.attemptsMax ?? 50;
    const requestsMax = this.options.requestsMax ?? Number.POSITIVE_INFINITY;
    const pinned = this.options.targetChoice === "pinned";
    let turn = firstTurn;
    for (let seq = 0; !this.stopped && performance.now() < deadlineMs && this.successes < requestsMax; seq++) {
      const request = build(client, seq);
      const firstMs = performance.now();
      let ok = false;
      for (let attempt = 0; attempt < attemptsMax && !this.stopped && performance.now() < deadlineMs; attempt++) {
        const target = this.targets[turn % this.targets.length] ?? this.targets[0] ?? "";
        if (!pinned) turn++; // rotate: every attempt goes to the next target
        const status = await this.attempt(connections, target, request);
        if (status >= 200 && status < 300) {
          ok = true;
          break;
        }
        if (!retryableStatuses.has(status)) break;
        if (pinned) turn++; // pinned: only a failure worth retrying moves the client on
        await Bun.sleep(this.options.retryBackoffMs ?? 2);
      }
      if (!ok) {
        if (!this.stopped && performance.now() < deadlineMs) this.failures++;
        continue;
      }
      const endMs = performance.now();
      this.successes++;
      if (endMs >= this.windowStartMs) {
        this.samples.push(endMs - firstMs);
        this.lastMeasuredEndMs = Math.max(this.lastMeasuredEndMs, endMs);
      }
    }
  }

  /** One HTTP attempt on this client's own connection to `target`; the status, or 0 on network error or timeout. */
  private async attempt(connections: Map<string, HttpConnection>, target: string, request: BuiltRequest): Promise<number> {
    const startMs = performance.now();
    let status = 0;
    let connection = connections.get(target);
    if (connection === undefined) {
      const url = new URL(target);
      connection = new HttpConnection(url.hostname, Number(url.port));
      connections.set(target, connection);
    }
    try {
      status = (await connection.request(request.method, request.path, request.contentType, request.body, this.options.requestTimeoutMs ?? 5_000)).status;
    } catch {
      status = 0;
    }
    const ok = status >= 200 && status < 300;
    if (!ok) {
      this.errors++;
      this.errorStatuses[String(status)] = (this.errorStatuses[String(status)] ?? 0) + 1;
    }
    if (this.listeners.length > 0) {
      const record: AttemptRecord = { startMs, endMs: performance.now(), ok, status, target };
      for (const listener of this.listeners) listener(record);
    }
    return status;
  }
}

export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] ?? NaN;
}

export function runLoad(options: LoadOptions): Promise<LoadResult> {
  return new LoadRun(options).done;
}

/** Combines per-process results: rates add (the windows overlap), latencies are pooled. */
export function mergeResults(parts: readonly LoadResult[]): LoadResult {
  const total = parts.reduce((n, p) => n + p.latenciesMs.length, 0);
  const latenciesMs = new Float64Array(total);
  let at = 0;
  for (const part of parts) {
    latenciesMs.set(part.latenciesMs, at);
    at += part.latenciesMs.length;
  }
  latenciesMs.sort();
  const errorStatuses: Record<string, number> = {};
  for (const part of parts) for (const [k, v] of Object.entries(part.errorStatuses)) errorStatuses[k] = (errorStatuses[k] ?? 0) + v;
  return {
    requests: total,
    errors: parts.reduce((n, p) => n + p.errors, 0),
    failures: parts.reduce((n, p) => n + p.failures, 0),
    windowMs: Math.max(...parts.map((p) => p.windowMs)),
    requestsPerS: parts.reduce((n, p) => n + p.requestsPerS, 0),
    p50Ms: quantile(latenciesMs, 0.5),
    p99Ms: quantile(latenciesMs, 0.99),
    maxMs: latenciesMs.length === 0 ? NaN : (latenciesMs[latenciesMs.length - 1] ?? NaN),
    latenciesMs,
    errorStatuses,
  };
}

/**
 * Splits the clients over `processes` worker processes (bench/support/load-worker.ts) and merges
 * their results; with processes = 1 it runs in this process. Workers report on stdout as one JSON
 * line; a worker that dies or overruns its bound fails the run.
 */
export async function runLoadParallel(options: LoadOptions, processes: number): Promise<LoadResult> {
  if (processes <= 1 || options.clients < processes) return runLoad(options);
  const share = Math.floor(options.clients / processes);
  const plans = Array.from({ length: processes }, (_, i): LoadOptions => ({
    ...options,
    clients: i === processes - 1 ? options.clients - share * (processes - 1) : share,
    clientBase: (options.clientBase ?? 0) + i * share,
    ...(options.requestsMax === undefined ? {} : { requestsMax: Math.ceil(options.requestsMax / processes) }),
  }));
  return mergeResults(await Promise.all(plans.map(runWorker)));
}

async function runWorker(plan: LoadOptions): Promise<LoadResult> {
  const proc = Bun.spawn([bunPath, join(import.meta.dir, "load-worker.ts"), JSON.stringify(plan)], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  trackProcess(proc);
  const lines: string[] = [];
  const stderr: string[] = [];
  const reading = Promise.all([forEachLine(proc.stdout, (l) => lines.push(l)), forEachLine(proc.stderr, (l) => stderr.push(l))]);
  const boundMs = plan.durationMs + 30_000;
  const finished = await Promise.race([proc.exited.then(() => true), Bun.sleep(boundMs).then(() => false)]);
  if (!finished) proc.kill("SIGKILL");
  await proc.exited;
  await reading;
  untrackProcess(proc);
  const last = lines.at(-1);
  if (!finished || proc.exitCode !== 0 || last === undefined) throw new Error(`load worker failed (exit ${proc.exitCode}, finished ${finished}): ${stderr.slice(-20).join("\n")}`);
  const parsed = JSON.parse(last) as Omit<LoadResult, "latenciesMs"> & { latenciesMs: number[] };
  return { ...parsed, latenciesMs: Float64Array.from(parsed.latenciesMs) };
}
