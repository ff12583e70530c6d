/**
 * @module The shell that makes HA packages run: on every node it renews the leases of the packages
 * it holds and runs exactly those whose lease is valid; on the Raft leader it also plans who holds
 * what (assignment.ts) and proposes the changes. All decisions are read from the replicated
 * configuration (server/state/config-state.ts), so every node agrees on holders and epochs.
 *
 * Timing (constants.ts `packageTiming`): a holder renews every `renewEveryMs`; a lease lasts
 * `leaseMs`. When a holder dies, the leader's view of its lease ends at most leaseMs + marginMs
 * after its last renewal; the next plan (every `planEveryMs`) moves the package, and the new holder
 * acts once its first renewal commits: well within a second of the failure window.
 */
import type { Logger } from "../../log/logger.ts";
import type { Group } from "../../node/group.ts";
import type { RaftDriver } from "../../node/raft-driver.ts";
import type { Transport } from "../../transport/transport.ts";
import type { ReplicatedState } from "../../state/replicated-state.ts";
import type { Deployment } from "../../state/config-state.ts";
import { encodeCommand } from "../../state/command-codec.ts";
import { resolveTemplate } from "../../config/model/resolve.ts";
import { planAssignments, type NodeView, type PackageSpec } from "./assignment.ts";
import { LeaseBook, OwnLeases, type LeaseTiming } from "./leases.ts";
import { AssertionError } from "../../assert.ts";
import { configStateLimits } from "../../constants.ts";
import { PackageRunner } from "./package-runner.ts";
import type { OmiTarget } from "../forwarding/omi-sender.ts";
import type { ConsumerRegistry } from "../forwarding/consumer-registry.ts";

export interface PackageTiming extends LeaseTiming {
  readonly tickMs: number;
  readonly renewEveryMs: number;
  readonly planEveryMs: number;
  /** A node not heard from for this long gets no new work. */
  readonly failureWindowMs: number;
  readonly rebalanceMovesMax: number;
}

export interface PackageRuntimeOptions {
  readonly nodeId: string;
  readonly group: Group;
  readonly driver: RaftDriver;
  readonly transport: Transport;
  readonly state: ReplicatedState;
  readonly log: Logger;
  readonly timing: PackageTiming;
  /** Where held packages forward their events (null: not configured on this node). */
  readonly omiTarget?: OmiTarget | null;
  /** Where packages forwarding to WebSocket consumers register while they run here. */
  readonly consumers?: ConsumerRegistry | null;
  /** Monotonic milliseconds; injected so tests can drive time. */
  readonly nowMs?: () => number;
}

export interface PackageStatus {
  readonly name: string;
  readonly node: string | null;
  readonly epoch: number;
  /** This node's own lease if it holds the package, else the leader's view (leader only). */
  readonly leaseLeftMs: number | null;
  readonly activeHere: boolean;
  readonly scope: "ha";
  /** Removed by the current deployment, held only until its undelivered events are forwarded. */
  readonly draining?: true;
}

export class PackageRuntime {
  private ticker: ReturnType<typeof setInterval> | null = null;
  private readonly book: LeaseBook;
  private readonly own: OwnLeases;
  private readonly runners = new Map<string, PackageRunner>();
  private readonly lastRenewalMs = new Map<string, number>();
  private leading = false;
  /** Log index of this node's first entry as leader: it plans only once that is applied. */
  private leadStartIndex = Infinity;
  private renewInFlight = false;
  private planInFlight = false;
  private lastRenewSentMs = -Infinity;
  private lastPlanMs = -Infinity;
  private reportedVersion = -1;
  private runningVersion = 0;
  private readonly resolved = new Map<number, readonly PackageSpec[]>();
  private readonly now: () => number;

  constructor(private readonly options: PackageRuntimeOptions) {
    this.book = new LeaseBook(options.timing);
    this.own = new OwnLeases(options.timing);
    this.now = options.nowMs ?? (() => performance.now());
  }

  start(): void {
    this.book.assumeAllHeld(this.now());
    this.ticker ??= setInterval(() => this.tick(), this.options.timing.tickMs);
  }

  stop(): void {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    for (const runner of this.runners.values()) runner.stop();
    this.runners.clear();
  }

  private tick(): void {
    const now = this.now();
    const leading = this.options.driver.knownLeader === this.options.nodeId;
    // A new leader's no-op is its first entry; once applied, so is everything committed before its
    // term, and with it every renewal its book must know.
    if (leading && !this.leading) this.leadStartIndex = this.options.driver.status().lastIndex;
    this.leading = leading;
    // Every node keeps the book, recording renewals as it applies them (here, a tick later: later is
    // the safe side), so a new leader needs no blanket wait (leases.ts).
    for (const renewal of this.options.state.config.takeRenewals()) {
      this.lastRenewalMs.set(renewal.node, now);
      for (const pkg of renewal.packages) this.book.renewed(pkg, now);
    }
    this.revokeMoved();
    this.reconcile(now);
    this.maybeRenew(now);
    if (leading && this.options.state.applied >= this.leadStartIndex) this.maybePlan(now);
  }

  /** A package that moved on or changed epoch loses its lease here at once. */
  private revokeMoved(): void {
    const assignments = this.options.state.config.assignments;
    for (const [name, runner] of this.runners) {
      const holder = assignments.get(name);
      if (holder?.node !== this.options.nodeId || holder.epoch !== runner.epoch) this.own.revoke(name);
    }
  }

  /**
   * Packages a deployment removed while events they accepted were still undelivered: those events
   * were acknowledged to their sources, so the package stays held (its forwarder only) until its
   * backlog is delivered, then is released like any removed package.
   */
  private draining(deployment: Deployment | null): string[] {
    const deployed = this.options.state.config.deployedPackages;
    const names = this.options.state.outbox.status().filter((o) => o.backlog > 0 && !deployed.has(o.package)).map((o) => o.package);
    return deployment === null ? [] : names.sort();
  }

  /** Runs exactly the packages this node holds under a valid lease: deployed ones, and removed ones still draining. */
  private reconcile(now: number): void {
    const deployment = this.options.state.config.current;
    const deployed = new Set([...(deployment?.packages ?? []), ...this.draining(deployment)]);
    const assignments = this.options.state.config.assignments;
    for (const [name, runner] of this.runners) {
      const holder = assignments.get(name);
      const keep = deployed.has(name) && holder?.node === this.options.nodeId && holder.epoch === runner.epoch && runner.version === deployment?.version && this.own.valid(name, runner.epoch, now);
      if (keep) continue;
      runner.stop();
      this.runners.delete(name);
      this.options.log.info("package stopped here", { package: name, epoch: runner.epoch });
    }
    if (deployment === null) return;
    for (const [name, holder] of assignments) {
      if (holder.node !== this.options.nodeId || !deployed.has(name) || this.runners.has(name) || !this.own.valid(name, holder.epoch, now)) continue;
      const runner = new PackageRunner({
        nodeId: this.options.nodeId,
        deployment,
        packageName: name,
        epoch: holder.epoch,
        mayAct: () => this.mayAct(name, holder.epoch),
        log: this.options.log,
        group: this.options.group,
        state: this.options.state,
        omiTarget: this.options.omiTarget ?? null,
        consumers: this.options.consumers ?? null,
      });
      this.runners.set(name, runner);
      runner.start();
      this.options.log.info("package started here", { package: name, epoch: holder.epoch, version: deployment.version });
    }
    this.runningVersion = deployment.version;
  }

  /** Checked before every action a package takes: the lease must be valid for the current epoch. */
  mayAct(pkg: string, epoch: number): boolean {
    const holder = this.options.state.config.assignments.get(pkg);
    return holder?.node === this.options.nodeId && holder.epoch === epoch && this.own.valid(pkg, epoch, this.now());
  }

  private maybeRenew(now: number): void {
    if (this.renewInFlight) return;
    const mine = [...this.options.state.config.assignments].filter(([, h]) => h.node === this.options.nodeId).map(([name, h]) => ({ name, epoch: h.epoch }));
    const due = mine.length > 0 ? now - this.lastRenewSentMs >= this.options.timing.renewEveryMs : this.reportedVersion !== this.runningVersion;
    if (!due) return;
    this.renewInFlight = true;
    this.lastRenewSentMs = now;
    const sentAtMs = now;
    const runningVersion = this.runningVersion;
    const data = encodeCommand({ kind: "config", op: { op: "renew", node: this.options.nodeId, runningVersion, packages: mine } });
    const { group } = this.options;
    group
      .propose(data, this.options.timing.leaseMs)
      .then(async ({ index, result }) => {
        if (!result.ok) return;
        // The leader applied it; this node's state may lag (a restart, a healed partition). Read the
        // assignments only at or past the renewal: a (node, epoch) pair holds over one stretch of
        // the log, so if it still holds here it held when the renewal applied.
        await group.waitApplied(index, this.options.timing.leaseMs);
        this.reportedVersion = runningVersion;
        const assignments = this.options.state.config.assignments;
        for (const { name, epoch } of mine) {
          const holder = assignments.get(name);
          if (holder?.node === this.options.nodeId && holder.epoch === epoch) this.own.granted(name, epoch, sentAtMs);
        }
      })
      .catch((error: unknown) => {
        if (error instanceof AssertionError) throw error;
        this.options.log.debug("lease renewal failed", { error });
      })
      .finally(() => (this.renewInFlight = false));
  }

  private maybePlan(now: number): void {
    if (this.planInFlight || now - this.lastPlanMs < this.options.timing.planEveryMs) return;
    this.lastPlanMs = now;
    const deployment = this.options.state.config.current;
    const basisIndex = this.options.state.applied;
    const planned = planAssignments({
      packages: deployment === null ? [] : [...this.packagesOf(deployment), ...this.draining(deployment).map((name) => ({ name, weight: 1 }))],
      nodes: this.nodeViews(deployment, now),
      current: this.options.state.config.assignments,
      leaseHeld: (pkg) => this.book.held(pkg, now),
      rebalanceMovesMax: this.options.timing.rebalanceMovesMax,
    });
    if (planned.length === 0) return;
    // A plan too large for one op goes in slices; the rest is planned again next time.
    const changes = planned.slice(0, configStateLimits.packagesPerOpMax);
    this.planInFlight = true;
    const data = encodeCommand({ kind: "config", op: { op: "assign", basisIndex, changes: changes.map(({ package: name, node, epoch }) => ({ package: name, node, epoch })) } });
    // Only here, only as leader: a plan is never retried or forwarded to another leader, whose book
    // it does not reflect (the state machine also refuses it if a lease was renewed since basisIndex).
    this.options.driver
      .propose(data)
      .then((result) => {
        if (result.ok) this.options.log.info("packages reassigned", { changes, basisIndex });
        else this.options.log.warn("plan refused", { error: result.error });
      })
      .catch((error: unknown) => {
        if (error instanceof AssertionError) throw error;
        this.options.log.warn("plan not committed", { error });
      })
      .finally(() => (this.planInFlight = false));
  }

  private packagesOf(deployment: Deployment): readonly PackageSpec[] {
    let specs = this.resolved.get(deployment.version);
    if (specs === undefined) {
      const resolved = resolveTemplate(deployment.model, deployment.template);
      specs = resolved.ok ? resolved.packages.map((p) => ({ name: p.name, weight: p.weight })) : [];
      this.resolved.clear();
      this.resolved.set(deployment.version, specs);
    }
    return specs;
  }

  /**
   * The connected server's nodes that are members, in contact, and (if they hold packages)
   * renewing: a node that is reachable but whose runtime stopped renewing gets no new work.
   */
  private nodeViews(deployment: Deployment | null, now: number): NodeView[] {
    const { nodeId, transport, state, timing } = this.options;
    const links = transport.stats();
    const wallNow = Date.now();
    const holding = new Set([...state.config.assignments.values()].map((h) => h.node));
    return (deployment?.model.connectedServer?.nodes ?? []).map(({ id }) => {
      if (id === nodeId) return { id, eligible: true };
      const link = links.get(id);
      const inContact = state.members.has(id) && link?.connected === true && link.lastContactMs !== null && wallNow - link.lastContactMs < timing.failureWindowMs;
      const renewing = !holding.has(id) || now - (this.lastRenewalMs.get(id) ?? -Infinity) < timing.leaseMs;
      return { id, eligible: inContact && renewing };
    });
  }

  status(): { packages: PackageStatus[]; runningVersion: number } {
    const now = this.now();
    const draining = new Set(this.draining(this.options.state.config.current));
    const packages = [...this.options.state.config.assignments]
      .filter(([name]) => (this.options.state.config.current?.packages.includes(name) ?? false) || draining.has(name))
      .map(([name, holder]): PackageStatus => ({
        name,
        node: holder.node,
        epoch: holder.epoch,
        leaseLeftMs: holder.node === this.options.nodeId ? this.own.leftMs(name, holder.epoch, now) : this.leading ? this.book.leftMs(name, now) : null,
        activeHere: this.runners.has(name),
        scope: "ha",
        ...(draining.has(name) ? { draining: true } : {}),
      }));
    return { packages, runningVersion: this.runningVersion };
  }

  runnerStatus(): ReturnType<PackageRunner["status"]>[] {
    return [...this.runners.values()].map((r) => r.status());
  }
}
