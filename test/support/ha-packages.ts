/**
 * @module HA packages observed from outside, for the multi-process tests and the takeover
 * benchmark: which node holds a package (from the nodes' status), bounded waits for a holder or for
 * the group to agree on one holder per package, and for pull packages an HTTP source on 127.0.0.1
 * that records every poll with the polling node, package and epoch (the runner's request headers),
 * with the model that deploys one pull package per name against it. Who acted and when is read
 * from the polls, never from the nodes' own claims alone.
 */
import type { Server } from "bun";
import type { Cluster } from "./cluster.ts";

export interface Poll {
  readonly node: string;
  readonly pkg: string;
  readonly epoch: number;
  readonly atMs: number;
}

export interface PollSource {
  readonly port: number;
  /** Every poll so far, in arrival order. */
  readonly polls: Poll[];
  stop(): void;
}

export interface Holder {
  readonly node: string;
  readonly epoch: number;
}

export interface PackageView {
  readonly name: string;
  readonly node: string | null;
  readonly epoch: number;
  readonly activeHere: boolean;
}

const statusRequestTimeoutMs = 1_000;
const untilPollIntervalMs = 50;

export function startPollSource(): PollSource {
  const polls: Poll[] = [];
  const server: Server<unknown> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request) {
      polls.push({
        node: request.headers.get("x-opsconn-node") ?? "?",
        pkg: request.headers.get("x-opsconn-package") ?? "?",
        epoch: Number(request.headers.get("x-opsconn-epoch")),
        atMs: Date.now(),
      });
      return Response.json({ events: [] });
    },
  });
  return { port: server.port!, polls, stop: () => void server.stop(true) };
}

/** A template whose packages each hold one pull policy polling `source` every second. */
export function pullPackagesModel(nodes: ReadonlyArray<{ id: string; port: number }>, source: PollSource, packageNames: readonly string[]) {
  return {
    apiVersion: "opsconn/v1",
    connectedServer: { name: "opsconn-ha", nodes: nodes.map((n) => ({ id: n.id, fqdn: `127.0.0.1:${n.port}` })) },
    policies: packageNames.map((p) => ({ name: `${p}-pull`, type: "event-pull", url: `http://127.0.0.1:${source.port}/${p}`, intervalSec: 1, timeoutSec: 1, inputFormat: "json" })),
    packages: packageNames.map((p) => ({ name: p, policies: [`${p}-pull`], components: ["events"] })),
    aspects: [{ name: "opsconn-ha", ciType: "Running Software", packages: [...packageNames] }],
    templates: [{ name: "opsconn-system", ciType: "Operations Connector System", aspects: ["opsconn-ha"] }],
  };
}

/** Polls `check` every 50 ms until it returns a value or `timeoutMs` passes. */
export async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(untilPollIntervalMs);
  }
}

/** The packages one node reports in its status; none when it does not answer in time. */
export async function packagesOn(url: string): Promise<PackageView[]> {
  const response = await fetch(`${url}/api/v1/status`, { signal: AbortSignal.timeout(statusRequestTimeoutMs) }).catch(() => null);
  return response?.ok ? (((await response.json()) as { packages?: PackageView[] }).packages ?? []) : [];
}

/**
 * A running node that says it runs `pkg` (activeHere), or null. During a handover two may say so
 * for a moment (the old lease not yet lapsed on its node): this returns the first.
 */
export async function holderOf(group: Cluster, pkg: string): Promise<string | null> {
  for (const node of group.running()) if ((await packagesOn(node.url)).some((p) => p.name === pkg && p.activeHere)) return node.id;
  return null;
}

/**
 * After a deployment: waits until every running node has applied it and one node runs `pkg`, so
 * a test's first request to any node finds the listener. Fails past the bound.
 */
export async function waitForHolder(group: Cluster, pkg: string, timeoutMs = 10_000): Promise<string> {
  await group.waitForCaughtUp(timeoutMs);
  return until(`a node running ${pkg}`, timeoutMs, () => holderOf(group, pkg));
}

/** The holder of every package once each is active on exactly that node, as every node agrees. */
export async function settledHolders(group: Cluster, packageNames: readonly string[], timeoutMs: number): Promise<Map<string, Holder>> {
  return until("every package active on exactly one node", timeoutMs, async () => {
    const views = await Promise.all(group.running().map(async (n) => ({ id: n.id, packages: await packagesOn(n.url) })));
    const holders = new Map<string, Holder>();
    for (const name of packageNames) {
      const active = views.filter((v) => v.packages.some((p) => p.name === name && p.activeHere));
      const agreed = views.map((v) => v.packages.find((p) => p.name === name));
      if (active.length !== 1 || agreed.some((p) => p?.node !== active[0]!.id || p.epoch !== agreed[0]!.epoch)) return null;
      holders.set(name, { node: active[0]!.id, epoch: agreed[0]!.epoch });
    }
    return holders;
  });
}

/** The first poll of `pkg` at or after `sinceMs` by a node other than `formerNode`. */
export function firstPollElsewhere(source: PollSource, pkg: string, formerNode: string, sinceMs: number): Poll | null {
  return source.polls.find((p) => p.pkg === pkg && p.atMs >= sinceMs && p.node !== formerNode) ?? null;
}
