/**
 * @module Binds a data directory to one node identity. A node started with another node's data
 * directory would otherwise replay that node's Raft state under a different name: refuse instead.
 */
import { eq } from "drizzle-orm";
import { nodeMeta } from "./schema.ts";
import type { Database } from "./database.ts";

export class DataDirOwnedError extends Error {
  override readonly name = "DataDirOwnedError";
}

export async function claimDataDir(db: Database, options: { nodeId: string; nowMs: number }): Promise<"claimed" | "reopened"> {
  const rows = await db.select().from(nodeMeta).where(eq(nodeMeta.key, "node_id"));
  const owner = rows[0]?.value;
  if (owner === undefined) {
    await db.insert(nodeMeta).values({ key: "node_id", value: options.nodeId, updatedAtMs: options.nowMs });
    return "claimed";
  }
  if (owner !== options.nodeId) {
    throw new DataDirOwnedError(`data directory belongs to node '${owner}', not '${options.nodeId}'`);
  }
  return "reopened";
}
