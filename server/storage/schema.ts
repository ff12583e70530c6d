/**
 * @module The libSQL schema, in drizzle's terms. `npm run db:generate` turns changes here into a
 * SQL migration in migrations/ (committed; never hand-edited), applied at boot.
 */
import { sqliteTable, text, integer } from "drizzle-orm/sqlite-core";

/**
 * Facts about this data directory itself. `node_id` binds the directory to one node, so a node
 * started on another node's data refuses instead of impersonating it.
 */
export const nodeMeta = sqliteTable("node_meta", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
  updatedAtMs: integer("updated_at_ms").notNull(),
});
