/**
 * @module One opsconn node: owns its database, its HTTP server and (in later layers) its Raft driver.
 * `start()` brings the parts up in dependency order and `stop()` takes them down in reverse, so a
 * SIGTERM never leaves a half-written transaction or a dangling socket behind.
 */
import type { Server } from "bun";
import type { NodeConfig } from "../config/node-config.ts";
import { ensureDataDir } from "../config/node-config.ts";
import type { Logger } from "../log/logger.ts";
import { openDatabase, type OpenDatabase } from "../storage/database.ts";
import { claimDataDir } from "../storage/node-meta.ts";
import { createApp } from "../http/app.ts";
import type { NodeStatus } from "../http/routes/status.ts";
import { version } from "../version.ts";
import { assert } from "../assert.ts";

export class ConnectorNode {
  private database: OpenDatabase | null = null;
  private server: Server<undefined> | null = null;
  private startedAtMs = 0;
  private dataDir = "";

  constructor(
    private readonly config: NodeConfig,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    assert(this.server === null, "node started twice");
    this.startedAtMs = Date.now();
    this.dataDir = ensureDataDir(this.config.dataDir);
    this.database = await openDatabase(this.dataDir);
    const claim = await claimDataDir(this.database.db, { nodeId: this.config.nodeId, nowMs: this.startedAtMs });
    const app = createApp({ log: this.log, status: { status: () => this.status() } });
    this.server = Bun.serve({ hostname: this.config.host, port: this.config.port, fetch: app.fetch });
    this.log.info("node started", { url: this.url, dataDir: this.dataDir, dataDirState: claim, version });
  }

  /** Idempotent; safe to call from a signal handler while start() is still running. */
  async stop(): Promise<void> {
    const server = this.server;
    const database = this.database;
    this.server = null;
    this.database = null;
    if (server !== null) await server.stop(true);
    database?.close();
    if (server !== null || database !== null) this.log.info("node stopped");
  }

  get url(): string {
    assert(this.server !== null, "node not started");
    return `http://${this.config.host}:${this.server.port}`;
  }

  status(): NodeStatus {
    return { nodeId: this.config.nodeId, version, uptimeMs: Date.now() - this.startedAtMs, dataDir: this.dataDir };
  }
}
