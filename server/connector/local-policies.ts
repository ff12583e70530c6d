/**
 * @module Local, non-HA policies (node config `localPolicies`): they run on this node only, all the
 * time, and never fail over, unlike policies in a deployed HA package. They are pull policies, polling
 * from here (the node config refuses local listeners). Status marks them `scope: "local"`.
 */
import type { Policy, PullPolicy } from "../config/model/types.ts";
import type { Logger } from "../log/logger.ts";
import { PullPoller, type PollerStatus } from "./pull/pull-poller.ts";

export interface LocalPolicyStatus {
  readonly name: string;
  readonly type: string;
  readonly scope: "local";
  readonly poller: PollerStatus | null;
}

export class LocalPolicies {
  private readonly pollers = new Map<string, PullPoller>();

  constructor(
    private readonly policies: readonly Policy[],
    options: { readonly nodeId: string; readonly log: Logger },
  ) {
    for (const policy of policies) {
      if (!policy.type.endsWith("-pull")) continue;
      // Local: no lease, no epoch; the package name says where it comes from.
      this.pollers.set(policy.name, new PullPoller(policy as PullPolicy, { nodeId: options.nodeId, packageName: "local", epoch: 0, mayAct: () => true, log: options.log }));
    }
  }

  start(): void {
    for (const poller of this.pollers.values()) poller.start();
  }

  stop(): void {
    for (const poller of this.pollers.values()) poller.stop();
  }

  status(): LocalPolicyStatus[] {
    return this.policies.map((p) => ({ name: p.name, type: p.type, scope: "local", poller: this.pollers.get(p.name)?.status() ?? null }));
  }
}
