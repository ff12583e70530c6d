/**
 * @module One HA package running on this node under one epoch of one deployment: it starts the
 * package's pull policies and, for a package that takes events, the forwarder of its outbox to the
 * package's target (`forward` in the model: OMi, a webhook, or WebSocket consumers). Listener
 * policies have no work here: the event listener takes their input on any node. A new epoch or
 * deployment version means a new runner.
 */
import type { Logger } from "../../log/logger.ts";
import type { Deployment } from "../../state/config-state.ts";
import type { PullPolicy, ResolvedPackage } from "../../config/model/types.ts";
import { resolveTemplate } from "../../config/model/resolve.ts";
import { PullPoller, type PollerStatus } from "../pull/pull-poller.ts";
import { EventForwarder, type ForwarderStatus } from "../forwarding/event-forwarder.ts";
import type { OmiTarget } from "../forwarding/omi-sender.ts";
import type { ConsumerRegistry } from "../forwarding/consumer-registry.ts";
import { createForwardTarget } from "../forwarding/target-factory.ts";
import type { Group } from "../../node/group.ts";
import type { ReplicatedState } from "../../state/replicated-state.ts";

export interface PackageRunnerOptions {
  readonly nodeId: string;
  readonly deployment: Deployment;
  readonly packageName: string;
  readonly epoch: number;
  readonly mayAct: () => boolean;
  readonly log: Logger;
  readonly group: Group;
  readonly state: ReplicatedState;
  readonly omiTarget: OmiTarget | null;
  /** This node's WebSocket consumer registry (null: no consumer route, as in some tests). */
  readonly consumers?: ConsumerRegistry | null;
}

export class PackageRunner {
  private readonly pollers: PullPoller[] = [];
  private readonly forwarder: EventForwarder | null;

  constructor(private readonly options: PackageRunnerOptions) {
    const resolved = resolveTemplate(options.deployment.model, options.deployment.template);
    const spec = resolved.ok ? resolved.packages.find((p) => p.name === options.packageName) : undefined;
    for (const policy of spec?.policies ?? []) {
      if (!isPull(policy)) continue;
      this.pollers.push(new PullPoller(policy, { nodeId: options.nodeId, packageName: options.packageName, epoch: options.epoch, mayAct: options.mayAct, log: options.log }));
    }
    // A package that takes events forwards its outbox to its target while it runs here. One that
    // no longer does (removed by the current deployment, or its event policies taken out) still
    // forwards what it accepted before, to the target it last had.
    const takesEvents = spec !== undefined && (spec.components.includes("events") || spec.policies.some((p) => p.type.startsWith("event-")));
    const hasBacklog = (options.state.outbox.status().find((o) => o.package === options.packageName)?.backlog ?? 0) > 0;
    this.forwarder = takesEvents ? this.createForwarder(spec.forward) : spec === undefined || hasBacklog ? this.createForwarder(spec?.forward ?? lastForward(options.state, options.packageName)) : null;
  }

  private createForwarder(forward: ResolvedPackage["forward"]): EventForwarder {
    const { packageName, epoch, state, log } = this.options;
    const target = createForwardTarget(forward, {
      packageName,
      epoch,
      omiTarget: this.options.omiTarget,
      consumers: this.options.consumers ?? null,
      cursor: () => state.outbox.status().find((s) => s.package === packageName)?.cursor ?? 0,
      env: process.env,
      log,
    });
    return new EventForwarder({ packageName, epoch, mayAct: this.options.mayAct, group: this.options.group, state, target, log });
  }

  get epoch(): number {
    return this.options.epoch;
  }

  get version(): number {
    return this.options.deployment.version;
  }

  start(): void {
    for (const poller of this.pollers) poller.start();
    this.forwarder?.start();
  }

  stop(): void {
    for (const poller of this.pollers) poller.stop();
    this.forwarder?.stop();
  }

  status(): { package: string; epoch: number; version: number; pollers: PollerStatus[]; forwarding: ForwarderStatus | null } {
    return { package: this.options.packageName, epoch: this.options.epoch, version: this.version, pollers: this.pollers.map((p) => p.status()), forwarding: this.forwarder?.status() ?? null };
  }
}

function isPull(policy: { readonly type: string }): policy is PullPolicy {
  return policy.type.endsWith("-pull");
}

/** The target a package had in the latest kept deployment that contained it (OMi if none is kept). */
function lastForward(state: ReplicatedState, packageName: string): ResolvedPackage["forward"] {
  return state.config.lastDeployedPackage(packageName)?.forward ?? { type: "omi" };
}
