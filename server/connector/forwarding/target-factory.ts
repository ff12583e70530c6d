/**
 * @module Builds a package's forwarding target from its `forward` in the deployed model and what
 * this node has: its omiTarget, its consumer registry, and its environment (a webhook's
 * Authorization value lives there, never in the replicated model).
 */
import { unreachable } from "../../assert.ts";
import { forwardingLimits } from "../../constants.ts";
import type { PackageForward } from "../../config/model/types.ts";
import type { Logger } from "../../log/logger.ts";
import type { ConsumerRegistry } from "./consumer-registry.ts";
import type { ForwardTarget } from "./forward-target.ts";
import { OmiForwardTarget, type OmiTarget } from "./omi-sender.ts";
import { WebhookForwardTarget } from "./webhook-sender.ts";
import { WebSocketTarget } from "./websocket-target.ts";

export interface TargetContext {
  readonly packageName: string;
  readonly epoch: number;
  readonly omiTarget: OmiTarget | null;
  readonly consumers: ConsumerRegistry | null;
  /** The package's committed cursor. */
  readonly cursor: () => number;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly log: Logger;
}

export function createForwardTarget(forward: PackageForward, context: TargetContext): ForwardTarget {
  switch (forward.type) {
    case "omi":
      return new OmiForwardTarget(context.omiTarget);
    case "webhook": {
      const name = forward.authorizationEnv;
      const authorization = name === undefined ? undefined : context.env[name];
      const problem = name !== undefined && (authorization === undefined || authorization === "") ? `environment variable ${name} (the webhook's authorizationEnv) is not set on this node` : null;
      const target = { url: forward.url, headers: forward.headers ?? {}, timeoutMs: forwardingLimits.requestTimeoutMs, ...(authorization === undefined ? {} : { authorization }) };
      return new WebhookForwardTarget({ packageName: context.packageName, target, problem });
    }
    case "websocket":
      return new WebSocketTarget({ packageName: context.packageName, epoch: context.epoch, cursor: context.cursor, registry: context.consumers, log: context.log });
    default:
      return unreachable(forward);
  }
}
