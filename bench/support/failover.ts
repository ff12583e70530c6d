/**
 * @module Failover trials shared by the opsconn and etcd sides of bench/failover.bench.ts: under a
 * continuous closed-loop write load, kill -9 the leader and measure the time from the kill to the
 * first successful write *issued after the kill* through a survivor. Counting only requests issued
 * after the kill matters: a response already on its way from a survivor when the leader died would
 * otherwise look like an instant failover. Clients retry immediately against the survivors with a
 * short per-attempt timeout, so a request stuck on a dead forwarding path costs at most that bound.
 */
import { LoadRun, type AttemptRecord, type Workload } from "./load.ts";

/** What a trial needs from a group, opsconn or etcd. */
export interface FailoverTarget {
  /** Every member's base URL, running or not. */
  urlOf(name: string): string;
  names(): readonly string[];
  /** Name of the current leader; waits (bounded) for one. */
  waitForLeader(timeoutMs: number): Promise<string>;
  kill(name: string): Promise<void>;
  restart(name: string): Promise<void>;
  /** Resolves once every running member has applied what the leader has committed. */
  waitForCaughtUp(timeoutMs: number): Promise<void>;
}

export interface FailoverOptions {
  readonly trials: number;
  readonly clients: number;
  readonly workload: Workload;
  /** Bound on one trial's wait for the first post-kill success. */
  readonly trialTimeoutMs: number;
  /** Bound on the whole run; trials stop early (and are reported as fewer) when it is reached. */
  readonly totalBudgetMs: number;
  readonly attemptTimeoutMs: number;
  /** Steady load before each kill, so the group is busy (pipelines full) when its leader dies. */
  readonly steadyMs: number;
}

export interface FailoverResult {
  readonly trialsMs: number[];
  readonly timedOut: number;
}

export async function runFailoverTrials(target: FailoverTarget, options: FailoverOptions): Promise<FailoverResult> {
  const budgetEndMs = performance.now() + options.totalBudgetMs;
  const load = new LoadRun({
    targets: target.names().map((n) => target.urlOf(n)),
    clients: options.clients,
    workload: options.workload,
    durationMs: options.totalBudgetMs + options.trialTimeoutMs,
    requestTimeoutMs: options.attemptTimeoutMs,
    // Retry without giving up: the budget and trial timeout bound the loop, not an attempt count.
    attemptsMax: 1_000_000,
    retryBackoffMs: 1,
  });
  let watcher: ((record: AttemptRecord) => void) | null = null;
  load.onAttempt((record) => watcher?.(record));
  const trialsMs: number[] = [];
  let timedOut = 0;
  try {
    for (let trial = 0; trial < options.trials && performance.now() < budgetEndMs; trial++) {
      const leader = await target.waitForLeader(options.trialTimeoutMs);
      await Bun.sleep(options.steadyMs);
      const survivors = target.names().filter((n) => n !== leader);
      load.setTargets(survivors.map((n) => target.urlOf(n)));
      const killMs = performance.now();
      const firstSuccess = new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), options.trialTimeoutMs);
        watcher = (record) => {
          if (record.ok && record.startMs >= killMs) {
            clearTimeout(timer);
            watcher = null;
            resolve(record.endMs);
          }
        };
      });
      await target.kill(leader);
      const endMs = await firstSuccess;
      if (endMs === null) timedOut++;
      else trialsMs.push(endMs - killMs);
      await target.restart(leader);
      load.setTargets(target.names().map((n) => target.urlOf(n)));
      await target.waitForCaughtUp(options.trialTimeoutMs * 2);
    }
  } finally {
    watcher = null;
    load.stop();
    await load.done;
  }
  return { trialsMs, timedOut };
}
