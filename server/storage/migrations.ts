/**
 * @module drizzle-kit's migrations (migrations/*.sql + meta/_journal.json), read from the source tree
 * in development and from the files embedded in the single binary after `bun build --compile`.
 * The journal is imported statically, so it is bundled either way; each SQL file is looked up by tag.
 */
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import journal from "../../migrations/meta/_journal.json";
import { assert } from "../assert.ts";

export interface Migration {
  readonly tag: string;
  /** drizzle's ordering key: the journal's `when`; recorded as created_at. */
  readonly createdAtMs: number;
  readonly hash: string;
  readonly statements: readonly string[];
}

const sourceDir = join(import.meta.dir, "../../migrations");

export async function loadMigrations(): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for (const entry of journal.entries) {
    const text = await migrationText(entry.tag);
    migrations.push({
      tag: entry.tag,
      createdAtMs: entry.when,
      // Same digest drizzle's own migrator records, so either can take over a database.
      hash: new Bun.CryptoHasher("sha256").update(text).digest("hex"),
      statements: text.split("--> statement-breakpoint").map((s) => s.trim()).filter((s) => s.length > 0),
    });
  }
  assert(migrations.every((m, i) => i === 0 || m.createdAtMs > migrations[i - 1]!.createdAtMs), "migration journal out of order");
  return migrations;
}

async function migrationText(tag: string): Promise<string> {
  const file = `${tag}.sql`;
  const onDisk = join(sourceDir, file);
  if (existsSync(onDisk)) return readFileSync(onDisk, "utf8");
  const embedded = Bun.embeddedFiles.find((blob) => (blob as Blob & { name?: string }).name === file);
  if (embedded === undefined) throw new Error(`migration ${file} is neither in ${sourceDir} nor embedded in this binary`);
  return embedded.text();
}
