/**
 * @module The replicated configuration: the model being edited (the draft), the history of
 * deployments, which node holds each HA package (with its fencing epoch), and what version each
 * node reports running. Deterministic: every node applies the same operations to the same result,
 * so every node holds the same deployed version. Times come inside the operations (stamped by the
 * proposer), never from the applier's clock.
 *
 * Durable form (written by `flush`, in the transaction that moves the applied index): the draft and
 * the runtime part (holders, reports) as one JSON row each, rewritten only when they changed, and
 * one row per deployment, written once. Lease renewals change only the small runtime row.
 */
import { assert } from "../assert.ts";
import { configStateLimits, outboxLimits } from "../constants.ts";
import type { ConfigModel, HaPackage } from "../config/model/types.ts";
import { parseModel } from "../config/model/parse-model.ts";
import { resolveTemplate, validateDeployment } from "../config/model/resolve.ts";
import type { SqlStatement } from "../storage/sql-writer.ts";

export interface PackageAssignment {
  readonly node: string | null;
  /** Fencing token: +1 on every change of holder; a holder acts only under its own epoch. */
  readonly epoch: number;
}

export interface Deployment {
  readonly version: number;
  /** Log index of the op that made it: how a proposer finds the version it created. */
  readonly index: number;
  readonly template: string;
  readonly kind: "deploy" | "rollback";
  /** For a rollback: the version whose configuration it deploys again. */
  readonly rollbackOf: number | null;
  readonly atMs: number;
  readonly model: ConfigModel;
  /** The HA packages this deployment activates, by name. */
  readonly packages: readonly string[];
  /**
   * Whether the outbox byte budgets (outboxBytesMax) apply. Deploy ops of builds before them carry
   * no such flag: re-applied after an upgrade, they keep the rule they were acknowledged under
   * (the 1M-event bound only), so a node that re-applies decides as the ones that flushed.
   */
  readonly byteBudgets?: true;
}

export interface NodeReport {
  readonly runningVersion: number;
  /** Log index of the report: how fresh it is, in the group's own time. */
  readonly index: number;
}

/** Operations on the configuration, carried in log entries (command kind "config"). */
export type ConfigOp =
  /** `ifDraftIndex`: apply only if the draft was last written at that index (read-modify-write). */
  | { readonly op: "put-model"; readonly document: unknown; readonly ifDraftIndex?: number }
  /** `ifDraftIndex`: deploy only the draft that was validated (the one written at that index). */
  | { readonly op: "deploy"; readonly template: string; readonly atMs: number; readonly ifDraftIndex?: number; readonly byteBudgets?: true }
  | { readonly op: "rollback"; readonly version: number; readonly atMs: number; readonly byteBudgets?: true }
  /**
   * `basisIndex`: the applied index the leader's lease book reflected when it planned. A package
   * whose holder renewed after it may not be moved by this plan (the book did not see that lease).
   */
  | { readonly op: "assign"; readonly basisIndex: number; readonly changes: ReadonlyArray<{ readonly package: string; readonly node: string | null; readonly epoch: number }> }
  | { readonly op: "renew"; readonly node: string; readonly runningVersion: number; readonly packages: ReadonlyArray<{ readonly name: string; readonly epoch: number }> };

/** A lease renewal that matched the current assignments, for the leader's lease book. */
export interface RenewalEvent {
  readonly node: string;
  readonly packages: readonly string[];
  readonly index: number;
}

export type ConfigApplyResult = { readonly ok: true; readonly version?: number } | { readonly ok: false; readonly error: string };

const emptyModel: ConfigModel = { connectedServer: null, policies: [], packages: [], aspects: [], templates: [] };
const upsertPart = "INSERT INTO config_state (part, document) VALUES (?, ?) ON CONFLICT(part) DO UPDATE SET document = excluded.document";
const insertDeployment = "INSERT INTO config_deployments (version, document) VALUES (?, ?)";
const pruneDeployments = "DELETE FROM config_deployments WHERE version < ?";

/** The rows `load` reads back. */
export interface ConfigRows {
  readonly draft: string | null;
  readonly runtime: string | null;
  readonly deployments: readonly string[];
}

const noPackages: ReadonlySet<string> = new Set();
const noBudgets: ReadonlyMap<string, number> = new Map();
const deployedBudgets = new WeakMap<Deployment, ReadonlyMap<string, number>>();
const deployedSets = new WeakMap<Deployment, ReadonlySet<string>>();

export class ConfigState {
  private draftModel: ConfigModel = emptyModel;
  /** Log index of the put-model that wrote the draft (0: never written). */
  private draftIndexValue = 0;
  private history: Deployment[] = [];
  private readonly holders = new Map<string, PackageAssignment>();
  /** Package → log index of its holder's last renewal that matched. */
  private readonly renewedAt = new Map<string, number>();
  private readonly reports = new Map<string, NodeReport>();
  private renewals: RenewalEvent[] = [];
  private draftDirty = false;
  private runtimeDirty = false;
  private deploymentsUnwritten: Deployment[] = [];
  private lastIndex = 0;

  get draft(): ConfigModel {
    return this.draftModel;
  }

  get draftIndex(): number {
    return this.draftIndexValue;
  }

  get deployments(): readonly Deployment[] {
    return this.history;
  }

  /** The current deployment's package names (one set per deployment, not per call). */
  get deployedPackages(): ReadonlySet<string> {
    const current = this.current;
    if (current === null) return noPackages;
    let names = deployedSets.get(current);
    if (names === undefined) deployedSets.set(current, (names = new Set(current.packages)));
    return names;
  }

  /** The current deployment's outbox budget per package, in bytes (one map per deployment). */
  get outboxBudgets(): ReadonlyMap<string, number> {
    const current = this.current;
    if (current === null) return noBudgets;
    let budgets = deployedBudgets.get(current);
    if (budgets === undefined) {
      const budgetOf = (name: string) => (current.byteBudgets === true ? (current.model.packages.find((p) => p.name === name)?.outboxBytesMax ?? outboxLimits.bytesPerPackageDefault) : Infinity);
      budgets = new Map(current.packages.map((name) => [name, budgetOf(name)]));
      deployedBudgets.set(current, budgets);
    }
    return budgets;
  }

  /**
   * The package as the latest kept deployment that activated it defines it (the current one first),
   * or null: how a package removed while it still holds undelivered events keeps its target.
   */
  lastDeployedPackage(name: string): HaPackage | null {
    for (let i = this.history.length - 1; i >= 0; i--) {
      const deployment = this.history[i]!;
      if (deployment.packages.includes(name)) return deployment.model.packages.find((p) => p.name === name) ?? null;
    }
    return null;
  }

  get current(): Deployment | null {
    return this.history.at(-1) ?? null;
  }

  get assignments(): ReadonlyMap<string, PackageAssignment> {
    return this.holders;
  }

  get nodeReports(): ReadonlyMap<string, NodeReport> {
    return this.reports;
  }

  /** Renewals applied since the last call (for the leader's lease book); bounded. */
  takeRenewals(): RenewalEvent[] {
    const taken = this.renewals;
    this.renewals = [];
    return taken;
  }

  apply(op: ConfigOp, index: number, memberIds: readonly string[]): ConfigApplyResult {
    assert(index > this.lastIndex, () => `config ops apply in log order: ${index} after ${this.lastIndex}`);
    this.lastIndex = index;
    return this.applyOp(op, index, memberIds);
  }

  private applyOp(op: ConfigOp, index: number, memberIds: readonly string[]): ConfigApplyResult {
    const malformed = checkOp(op);
    if (malformed !== null) return { ok: false, error: `malformed config op: ${malformed}` };
    switch (op.op) {
      case "put-model": {
        if (op.ifDraftIndex !== undefined && op.ifDraftIndex !== this.draftIndexValue) {
          return { ok: false, error: `conflict: the draft changed (written at ${this.draftIndexValue}, expected ${op.ifDraftIndex})` };
        }
        const parsed = parseModel(op.document);
        if (!parsed.ok) return { ok: false, error: `invalid model: ${parsed.problems.map((p) => `${p.path}: ${p.message}`).join("; ")}` };
        this.draftModel = parsed.model;
        this.draftIndexValue = index;
        this.draftDirty = true;
        return { ok: true };
      }
      case "deploy":
        if (op.ifDraftIndex !== undefined && op.ifDraftIndex !== this.draftIndexValue) {
          return { ok: false, error: `conflict: the draft changed since it was validated (written at ${this.draftIndexValue}, expected ${op.ifDraftIndex})` };
        }
        return this.deploy({ model: this.draftModel, template: op.template, atMs: op.atMs, rollbackOf: null, index, byteBudgets: op.byteBudgets === true }, memberIds);
      case "rollback": {
        const target = this.history.find((d) => d.version === op.version);
        if (target === undefined) return { ok: false, error: `no deployment version ${op.version} in the kept history` };
        return this.deploy({ model: target.model, template: target.template, atMs: op.atMs, rollbackOf: target.version, index, byteBudgets: op.byteBudgets === true }, memberIds);
      }
      case "assign":
        return this.assign(op);
      case "renew":
        return this.renew(op, index);
    }
  }

  private deploy(options: { model: ConfigModel; template: string; atMs: number; rollbackOf: number | null; index: number; byteBudgets: boolean }, memberIds: readonly string[]): ConfigApplyResult {
    const problems = validateDeployment(options.model, options.template, memberIds);
    if (problems.length > 0) return { ok: false, error: `cannot deploy: ${problems.map((p) => `${p.path}: ${p.message}`).join("; ")}` };
    const resolved = resolveTemplate(options.model, options.template);
    assert(resolved.ok, "a validated deployment resolves");
    const version = (this.current?.version ?? 0) + 1;
    const deployment: Deployment = {
      version,
      index: options.index,
      template: options.template,
      kind: options.rollbackOf === null ? "deploy" : "rollback",
      rollbackOf: options.rollbackOf,
      atMs: options.atMs,
      model: options.model,
      packages: resolved.packages.map((p) => p.name),
      ...(options.byteBudgets ? { byteBudgets: true as const } : {}),
    };
    this.history.push(deployment);
    this.deploymentsUnwritten.push(deployment);
    if (this.history.length > configStateLimits.deploymentsKept) this.history = this.history.slice(-configStateLimits.deploymentsKept);
    return { ok: true, version };
  }

  /** All or nothing: a change planned against an older state (wrong epoch) refuses the whole plan. */
  private assign(op: Extract<ConfigOp, { op: "assign" }>): ConfigApplyResult {
    for (const change of op.changes) {
      const holder = this.holders.get(change.package);
      const epoch = holder?.epoch ?? 0;
      if (change.epoch !== epoch + 1) return { ok: false, error: `stale plan: ${change.package} is at epoch ${epoch}, the plan says ${change.epoch}` };
      const renewed = this.renewedAt.get(change.package) ?? 0;
      if (holder?.node != null && renewed > op.basisIndex) {
        return { ok: false, error: `stale plan: ${change.package} was renewed by ${holder.node} at ${renewed}, after the plan's basis ${op.basisIndex}` };
      }
    }
    for (const change of op.changes) this.holders.set(change.package, { node: change.node, epoch: change.epoch });
    this.runtimeDirty = true;
    return { ok: true };
  }

  /** Only packages the node holds under the epoch it names count: a stale holder renews nothing. */
  private renew(op: Extract<ConfigOp, { op: "renew" }>, index: number): ConfigApplyResult {
    const held = op.packages.filter((p) => {
      const holder = this.holders.get(p.name);
      return holder !== undefined && holder.node === op.node && holder.epoch === p.epoch;
    });
    for (const p of held) this.renewedAt.set(p.name, index);
    this.reports.set(op.node, { runningVersion: op.runningVersion, index });
    this.runtimeDirty = true;
    this.renewals.push({ node: op.node, packages: held.map((p) => p.name), index });
    if (this.renewals.length > configStateLimits.renewalEventsKept) this.renewals = this.renewals.slice(-configStateLimits.renewalEventsKept);
    return { ok: true };
  }

  get unflushed(): boolean {
    return this.draftDirty || this.runtimeDirty || this.deploymentsUnwritten.length > 0;
  }

  flush(out: SqlStatement[]): void {
    if (this.draftDirty) out.push({ sql: upsertPart, args: ["draft", JSON.stringify({ index: this.draftIndexValue, model: this.draftModel })] });
    if (this.runtimeDirty) out.push({ sql: upsertPart, args: ["runtime", this.runtimeDocument()] });
    for (const deployment of this.deploymentsUnwritten) out.push({ sql: insertDeployment, args: [deployment.version, JSON.stringify(deployment)] });
    if (this.deploymentsUnwritten.length > 0) out.push({ sql: pruneDeployments, args: [this.history[0]!.version] });
    this.draftDirty = this.runtimeDirty = false;
    this.deploymentsUnwritten = [];
  }

  /** Boot or snapshot restore: the state the rows describe. */
  load(rows: ConfigRows): void {
    this.renewals = [];
    this.draftDirty = this.runtimeDirty = false;
    this.deploymentsUnwritten = [];
    this.holders.clear();
    this.reports.clear();
    this.renewedAt.clear();
    const draft = rows.draft === null ? { index: 0, model: emptyModel } : (JSON.parse(rows.draft) as { index: number; model: ConfigModel });
    this.draftModel = draft.model;
    this.draftIndexValue = draft.index;
    this.history = rows.deployments.map((d) => JSON.parse(d) as Deployment).sort((a, b) => a.version - b.version);
    if (rows.runtime !== null) {
      const runtime = JSON.parse(rows.runtime) as { holders: Array<[string, PackageAssignment]>; reports: Array<[string, NodeReport]>; renewedAt?: Array<[string, number]> };
      for (const [name, holder] of runtime.holders) this.holders.set(name, holder);
      for (const [node, report] of runtime.reports) this.reports.set(node, report);
      for (const [name, index] of runtime.renewedAt ?? []) this.renewedAt.set(name, index);
    }
  }

  /** The rows that describe this state (snapshot images). */
  toRows(): ConfigRows {
    return {
      draft: JSON.stringify({ index: this.draftIndexValue, model: this.draftModel }),
      runtime: this.runtimeDocument(),
      deployments: this.history.map((d) => JSON.stringify(d)),
    };
  }

  private runtimeDocument(): string {
    return JSON.stringify({ holders: [...this.holders], reports: [...this.reports], renewedAt: [...this.renewedAt] });
  }

  /** After a snapshot restore: every row is written again (the caller deletes the old ones). */
  markAllDirty(): void {
    this.draftDirty = this.runtimeDirty = true;
    this.deploymentsUnwritten = [...this.history];
  }
}

const isName = (v: unknown): v is string => typeof v === "string" && v.length > 0 && v.length <= 256;
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/**
 * Ops come from our own nodes, but a malformed one must fail the same way on every node rather than
 * throw inside apply (which would stop every node at the same entry).
 */
function checkOp(op: ConfigOp): string | null {
  switch (op.op) {
    case "put-model":
      return op.ifDraftIndex === undefined || isCount(op.ifDraftIndex) ? null : "ifDraftIndex must be a log index";
    case "deploy":
      return isName(op.template) && isCount(op.atMs) && (op.ifDraftIndex === undefined || isCount(op.ifDraftIndex)) && (op.byteBudgets === undefined || op.byteBudgets === true) ? null : "deploy needs template and atMs";
    case "rollback":
      return isCount(op.version) && isCount(op.atMs) && (op.byteBudgets === undefined || op.byteBudgets === true) ? null : "rollback needs version and atMs";
    case "assign":
      return isCount(op.basisIndex) && Array.isArray(op.changes) && op.changes.length <= configStateLimits.packagesPerOpMax && op.changes.every((c) => isName(c?.package) && (c.node === null || isName(c.node)) && isCount(c.epoch))
        ? null
        : "assign needs basisIndex and changes [{package, node, epoch}]";
    case "renew":
      return isName(op.node) && isCount(op.runningVersion) && Array.isArray(op.packages) && op.packages.length <= configStateLimits.packagesPerOpMax && op.packages.every((p) => isName(p?.name) && isCount(p.epoch))
        ? null
        : "renew needs node, runningVersion and packages [{name, epoch}]";
  }
}
