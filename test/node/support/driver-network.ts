/**
 * Driver-level harness: real RaftDrivers (real RawNodes, real libSQL files in temp dirs) wired by an
 * in-memory network with partition control, plus an in-memory stand-in for the peer Transport's
 * request/onApp channel so Group can forward to the leader.
 * Partitions and lost replies are injected exactly here; the real transport has its own tests
 * (test/transport) and the whole node runs over real sockets in test/it.
 */
import { RaftDriver, type RaftTiming } from "../../../server/node/raft-driver.ts";
import { Group } from "../../../server/node/group.ts";
import { LibsqlLogStore } from "../../../server/storage/libsql-log-store.ts";
import { openDatabase, type OpenDatabase } from "../../../server/storage/database.ts";
import { ReplicatedState } from "../../../server/state/replicated-state.ts";
import { Logger } from "../../../server/log/logger.ts";
import type { Message, NodeId } from "../../../server/raft/types.ts";
import type { AppHandler, AppReply, Transport } from "../../../server/transport/transport.ts";
import { tempDir } from "../../support/node-process.ts";
import type { SqlStatement } from "../../../server/storage/sql-writer.ts";

export const quietLog = (node: string) => new Logger({ node, level: "error", pretty: false, sink: { write: () => {} } });

export const fastTiming: RaftTiming = { tickMs: 5, electionTicks: 10, heartbeatTicks: 1, snapshotEveryEntries: 100_000, snapshotEveryBytes: 2 ** 40 };

/** A LibsqlLogStore whose commit can be intercepted (the Ready contract allows the shell to await its fsync). */
export class HookedStore extends LibsqlLogStore {
  beforeCommit: ((statements: SqlStatement[], durable: boolean) => void | Promise<void>) | null = null;
  override async commit(statements: SqlStatement[], options: { durable: boolean }): Promise<void> {
    if (this.beforeCommit !== null) await this.beforeCommit(statements, options.durable);
    return super.commit(statements, options);
  }
}

export interface TestNode {
  readonly id: NodeId;
  readonly driver: RaftDriver;
  readonly state: ReplicatedState;
  readonly store: HookedStore;
  readonly open: OpenDatabase;
  readonly fatal: Error[];
  group: Group | null;
  appHandler: AppHandler | null;
  /** Replaces the reply of the next forward this node sends, after the leader has answered. */
  rewriteNextReply: ((reply: AppReply) => AppReply) | null;
}

export class Network {
  readonly nodes = new Map<NodeId, TestNode>();
  private readonly cut = new Set<string>();

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut.add(`${id}>${other}`).add(`${other}>${id}`);
  }

  heal(): void {
    this.cut.clear();
  }

  deliver(messages: readonly Message[]): void {
    for (const m of messages) {
      if (this.cut.has(`${m.from}>${m.to}`)) continue;
      setTimeout(() => {
        if (this.cut.has(`${m.from}>${m.to}`)) return;
        this.nodes.get(m.to)?.driver.step([m]);
      }, 0);
    }
  }

  async start(ids: readonly NodeId[], options: { timing?: RaftTiming; withGroups?: boolean } = {}): Promise<void> {
    for (const [i, id] of ids.entries()) {
      const open = await openDatabase(tempDir("opsconn-review-"));
      const state = new ReplicatedState();
      const store = new HookedStore(open);
      const fatal: Error[] = [];
      const node: TestNode = { id, store, state, open, fatal, group: null, appHandler: null, rewriteNextReply: null, driver: null as unknown as RaftDriver };
      const driver = new RaftDriver({
        nodeId: id,
        store,
        state,
        transport: { send: (messages) => this.deliver(messages) },
        log: quietLog(id),
        timing: options.timing ?? fastTiming,
        seed: 1000 + i * 7919,
        onFatal: (e) => fatal.push(e),
        afterReady: (changes) => node.group?.afterReady(changes),
      });
      (node as { driver: RaftDriver }).driver = driver;
      this.nodes.set(id, node);
      await driver.start(open.client, ids);
    }
    if (options.withGroups === true) {
      const initialCluster = Object.fromEntries(ids.map((id) => [id, `127.0.0.1:${1}`]));
      for (const node of this.nodes.values()) {
        node.group = new Group({ nodeId: node.id, driver: node.driver, transport: this.fakeTransport(node), state: node.state, log: quietLog(node.id), initialCluster });
        node.group.start();
      }
    }
  }

  /** The parts of Transport that Group uses, over this in-memory network. */
  private fakeTransport(node: TestNode): Transport {
    const fake = {
      onMessages: () => {},
      onApp: (handler: AppHandler) => {
        node.appHandler = handler;
      },
      setPeers: () => {},
      start: () => {},
      request: async (peer: NodeId, body: Uint8Array): Promise<AppReply> => {
        const target = this.nodes.get(peer);
        if (target?.appHandler == null || this.cut.has(`${node.id}>${peer}`)) return { ok: false, reason: "unknown-peer" };
        const reply: AppReply = { ok: true, body: await target.appHandler({ from: node.id, body }) };
        const rewrite = node.rewriteNextReply;
        node.rewriteNextReply = null;
        return rewrite === null ? reply : rewrite(reply);
      },
    };
    return fake as unknown as Transport;
  }

  leader(): TestNode | null {
    for (const node of this.nodes.values()) if (node.fatal.length === 0 && node.driver.status().role === "leader") return node;
    return null;
  }

  async untilLeader(timeoutMs = 5000, except: NodeId | null = null): Promise<TestNode> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const leader = this.leader();
      if (leader !== null && leader.id !== except) {
        // Leader has committed its no-op (commit in its own term) so reads and proposals go through.
        const s = leader.driver.status();
        if (s.commit >= s.lastIndex) return leader;
      }
      await Bun.sleep(5);
    }
    throw new Error("no leader elected in time");
  }

  async stop(): Promise<void> {
    for (const node of this.nodes.values()) {
      await node.driver.stop();
      node.open.close();
    }
    this.nodes.clear();
  }
}

/** Resolves "pending" if `promise` has not settled within `ms`. */
export async function settledWithin<T>(promise: Promise<T>, ms: number): Promise<"resolved" | "rejected" | "pending"> {
  return Promise.race([promise.then(() => "resolved" as const, () => "rejected" as const), Bun.sleep(ms).then(() => "pending" as const)]);
}
