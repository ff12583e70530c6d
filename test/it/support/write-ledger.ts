/**
 * @module Closed-loop writers for multi-process tests: each writes unique keys to the group, moves to
 * another node on failure, and records exactly what the group acknowledged (200) and what it left
 * uncertain (504 or a dropped connection). Afterwards the ledger is checked against every survivor
 * and against the durable Raft logs themselves.
 */
import { openDatabase } from "../../../server/storage/database.ts";
import { LibsqlLogStore } from "../../../server/storage/libsql-log-store.ts";
import { decodeCommand } from "../../../server/state/command-codec.ts";
import type { Cluster } from "../../support/cluster.ts";

export interface Ledger {
  /** key → value, for every write answered 200. */
  readonly acknowledged: Map<string, string>;
  /** Keys whose outcome the group could not tell (504, connection dropped). */
  readonly uncertain: Set<string>;
  /** Writes refused as not applied (503) or bad: retried under a new key. */
  refused: number;
}

export function newLedger(): Ledger {
  return { acknowledged: new Map(), uncertain: new Set(), refused: 0 };
}

/** Runs `writers` closed loops until `stop()` resolves; bounded by `writesMax` per writer. */
export async function writeUntil(options: {
  cluster: Cluster;
  ledger: Ledger;
  writers: number;
  until: Promise<void>;
  writesMax?: number;
  prefix?: string;
  /** Targets of each request; default every running node. */
  targets?: () => string[];
}): Promise<void> {
  let stopped = false;
  void options.until.then(() => (stopped = true));
  const writesMax = options.writesMax ?? 20_000;
  await Promise.all(
    Array.from({ length: options.writers }, async (_, w) => {
      for (let i = 0; i < writesMax && !stopped; i++) {
        const targets = options.targets?.() ?? options.cluster.urls();
        const url = targets[(w + i) % Math.max(1, targets.length)];
        if (url === undefined) {
          await Bun.sleep(10);
          continue;
        }
        const key = `${options.prefix ?? "w"}${w}-${i}`;
        await writeOnce(options.ledger, url, key, `${key}@${url}`);
      }
    }),
  );
}

async function writeOnce(ledger: Ledger, url: string, key: string, value: string): Promise<void> {
  try {
    const response = await fetch(`${url}/api/v1/kv/${key}`, { method: "PUT", body: value, signal: AbortSignal.timeout(15_000) });
    await response.arrayBuffer();
    if (response.status === 200) ledger.acknowledged.set(key, value);
    else if (response.status === 504) ledger.uncertain.add(key);
    else ledger.refused++;
  } catch {
    // The request may have reached the node before it died: its outcome is unknown.
    ledger.uncertain.add(key);
    await Bun.sleep(5);
  }
}

/** Every acknowledged write must be readable, with its value, on `url` (a local, stale read). */
export async function missingOn(url: string, ledger: Ledger): Promise<string[]> {
  const missing: string[] = [];
  for (const [key, value] of ledger.acknowledged) {
    const response = await fetch(`${url}/api/v1/kv/${key}?stale=true`);
    const body = await response.text();
    if (response.status !== 200 || body !== value) missing.push(`${key} (${response.status} ${body.slice(0, 60)})`);
  }
  return missing;
}

/** How many committed kv-put entries each key has in a node's durable Raft log (node stopped). */
export async function putsPerKeyInLog(dataDir: string): Promise<Map<string, number>> {
  const database = await openDatabase(dataDir);
  try {
    const { persisted } = await new LibsqlLogStore(database).load();
    if (persisted.snapshot !== null) throw new Error(`log of ${dataDir} was compacted; raise snapshotEveryEntries for this test`);
    const counts = new Map<string, number>();
    for (const entry of persisted.entries) {
      if (entry.index > persisted.hardState.commit) break;
      if (entry.type !== "normal" || entry.data.length === 0) continue;
      const command = decodeCommand(entry.data);
      if (command.kind === "kv-put") counts.set(command.key, (counts.get(command.key) ?? 0) + 1);
    }
    return counts;
  } finally {
    database.close();
  }
}
