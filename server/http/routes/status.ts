/** @module Liveness (`/healthz`) and the node's self-description (`/api/v1/status`). */
import { Hono } from "hono";

export interface NodeStatus {
  readonly nodeId: string;
  readonly version: string;
  readonly uptimeMs: number;
  readonly dataDir: string;
  /** Present once the node runs: consensus and peer-link state (server/node/node-status.ts). */
  readonly advertise?: string;
  readonly kernels?: unknown;
  readonly raft?: unknown;
  /** Listener requests in Raft and waiting for room on this node (accept-queue.ts). */
  readonly accept?: unknown;
  readonly config?: unknown;
  readonly packages?: unknown;
  readonly runners?: unknown;
  readonly localPolicies?: unknown;
}

export interface StatusSource {
  status(): NodeStatus;
}

export function statusRoutes(source: StatusSource): Hono {
  const routes = new Hono();
  routes.get("/healthz", (c) => c.json({ status: "ok" }));
  routes.get("/api/v1/status", (c) => c.json(source.status()));
  return routes;
}
