/**
 * @module One HA package running on this node under one epoch of one deployment: it starts the
 * package's pull policies. (Listener policies have no work here yet: the event listener, issue 6,
 * will take their input and must check the same `mayAct`.) A new epoch or deployment version means
 * a new runner.
 */
import type { Logger } from "../../log/logger.ts";
import type { Deployment } from "../../state/config-state.ts";
import type { PullPolicy } from "../../config/model/types.ts";
import { resolveTemplate } from "../../config/model/resolve.ts";
import { PullPoller, type PollerStatus } from "../pull/pull-poller.ts";

export interface PackageRunnerOptions {
  readonly nodeId: string;
  readonly deployment: Deployment;
  readonly packageName: string;
  readonly epoch: number;
  readonly mayAct: () => boolean;
  readonly log: Logger;
}

export class PackageRunner {
  private readonly pollers: PullPoller[] = [];

  constructor(private readonly options: PackageRunnerOptions) {
    const resolved = resolveTemplate(options.deployment.model, options.deployment.template);
    const spec = resolved.ok ? resolved.packages.find((p) => p.name === options.packageName) : undefined;
    for (const policy of spec?.policies ?? []) {
      if (!isPull(policy)) continue;
      this.pollers.push(new PullPoller(policy, { nodeId: options.nodeId, packageName: options.packageName, epoch: options.epoch, mayAct: options.mayAct, log: options.log }));
    }
  }

  get epoch(): number {
    return this.options.epoch;
  }

  get version(): number {
    return this.options.deployment.version;
  }

  start(): void {
    for (const poller of this.pollers) poller.start();
  }

  stop(): void {
    for (const poller of this.pollers) poller.stop();
  }

  status(): { package: string; epoch: number; version: number; pollers: PollerStatus[] } {
    return { package: this.options.packageName, epoch: this.options.epoch, version: this.version, pollers: this.pollers.map((p) => p.status()) };
  }
}

function isPull(policy: { readonly type: string }): policy is PullPolicy {
  return policy.type.endsWith("-pull");
}
