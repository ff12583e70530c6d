/**
 * @module How the group's outcomes read over HTTP. 503 means "not applied, safe to retry" (no
 * leader, dropped, lost); 504 means "may or may not be applied" and tells the client so.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Group } from "../node/group.ts";
import { MembershipError, NotLeaderError, ProposalDroppedError, ProposalLostError, ProposalOutcomeUnknownError } from "../node/driver-errors.ts";
import { errorBody } from "./errors.ts";

export function groupErrorResponse(c: Context, error: unknown): Response {
  if (error instanceof NotLeaderError) return c.json(errorBody(503, `no leader reachable: ${error.message}`, { leader: error.leader, retry: true }), 503);
  if (error instanceof ProposalDroppedError || error instanceof ProposalLostError) {
    return c.json(errorBody(503, `not applied: ${error.message}`, { retry: true }), 503);
  }
  if (error instanceof ProposalOutcomeUnknownError) return c.json(errorBody(504, `outcome unknown: ${error.message}`, { retry: false }), 504);
  if (error instanceof MembershipError) return c.json(errorBody(504, error.message, { retry: false }), 504);
  throw error;
}

/** The running group, or a 503 while the node starts or stops (routes get the group lazily). */
export function runningGroup(getGroup: () => Group | null): Group {
  const running = getGroup();
  if (running === null) throw new HTTPException(503, { message: "node is starting or stopping" });
  return running;
}
