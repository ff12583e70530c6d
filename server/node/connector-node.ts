/**
 * @module One opsconn node: its database, Raft driver, peer transport, HA group view and HTTP server.
 * `start()` brings the parts up in dependency order (storage → HTTP listener, so peers can reach us
 * → Raft → peer links) and `stop()` takes them down in reverse, so a SIGTERM never leaves a
 * half-written transaction or a dangling socket behind.
 */
import type { Server } from "bun";
import { randomBytes, randomInt } from "node:crypto";
import type { NodeConfig } from "../config/node-config.ts";
import { ensureDataDir, readTls } from "../config/node-config.ts";
import type { Logger } from "../log/logger.ts";
import { openDatabase, type OpenDatabase } from "../storage/database.ts";
import { claimDataDir } from "../storage/node-meta.ts";
import { LibsqlLogStore } from "../storage/libsql-log-store.ts";
import { ReplicatedState } from "../state/replicated-state.ts";
import { Transport } from "../transport/transport.ts";
import { peerWebSocket, registerPeerRoute } from "../transport/peer-route.ts";
import { createApp } from "../http/app.ts";
import type { NodeStatus } from "../http/routes/status.ts";
import { version } from "../version.ts";
import { assert } from "../assert.ts";
import { RaftDriver } from "./raft-driver.ts";
import { Group } from "./group.ts";
import { describeStatus } from "./node-status.ts";
import { loadKernels, type Kernels } from "../wasm/kernels.ts";
import { PackageRuntime } from "../connector/packages/package-runtime.ts";
import { LocalPolicies } from "../connector/local-policies.ts";
import { forwardingLimits, outboxLimits, packageTiming } from "../constants.ts";
import type { OmiTarget } from "../connector/forwarding/omi-sender.ts";
import { ConsumerRegistry, locateConsumerEndpoint } from "../connector/forwarding/consumer-registry.ts";
import { AcceptQueue } from "../connector/events/accept-queue.ts";
import { readFileSync } from "node:fs";

interface Running {
  readonly database: OpenDatabase;
  readonly server: Server<unknown>;
  readonly transport: Transport;
  readonly driver: RaftDriver;
  readonly group: Group;
  readonly state: ReplicatedState;
  readonly advertise: string;
  readonly kernels: Kernels;
  readonly packages: PackageRuntime;
  readonly local: LocalPolicies;
  readonly acceptQueue: AcceptQueue;
}

export class ConnectorNode {
  private running: Running | null = null;
  private partial: Array<() => Promise<void> | void> = [];
  private startedAtMs = 0;
  private dataDir = "";

  constructor(
    private readonly config: NodeConfig,
    private readonly log: Logger,
    /** Called when the node can no longer take part safely (a durable write failed). */
    private readonly onFatal: (error: Error) => void = () => {},
  ) {}

  async start(): Promise<void> {
    assert(this.running === null, "node started twice");
    const { config, log } = this;
    this.startedAtMs = Date.now();
    this.dataDir = ensureDataDir(config.dataDir);
    const kernels = await loadKernels();
    const database = await openDatabase(this.dataDir);
    this.partial.push(() => database.close());
    const claim = await claimDataDir(database.db, { nodeId: config.nodeId, nowMs: this.startedAtMs });
    const state = new ReplicatedState();
    const tls = readTls(config);
    // A group of one has no peers to authenticate; a random secret keeps the code path the same.
    const transport = new Transport({
      id: config.nodeId,
      secret: config.clusterSecret ?? randomBytes(32),
      log,
      ...(tls === null ? {} : { tls: tls.ca === null ? true : { ca: tls.ca } }),
    });
    this.partial.push(() => transport.stop());
    let group: Group | null = null;
    const driver = new RaftDriver({
      nodeId: config.nodeId,
      store: new LibsqlLogStore(database),
      state,
      transport,
      log: log.child({ component: "raft" }),
      timing: config,
      seed: randomInt(2 ** 31),
      onFatal: (error) => this.onFatal(error),
      afterReady: (changes) => group?.afterReady(changes),
    });
    const peerTls = tls === null ? null : { scheme: "https" as const, ca: tls.ca };
    // Where the /ws/forward route and the package runners meet.
    const consumers = new ConsumerRegistry({ locate: (name) => locateConsumerEndpoint(state, name) });
    const currentGroup = (): Group | null => this.running?.group ?? null;
    const acceptQueue = new AcceptQueue({ group: currentGroup, state, nowMs: Date.now });
    const app = createApp({
      log,
      status: { status: () => this.status() },
      group: currentGroup,
      state,
      peerHttp: peerTls ?? { scheme: "http", ca: null },
      auth: config,
      testFaults: config.testFaults ? transport : null,
      consumers,
      acceptQueue,
    });
    if (config.apiTokens.length === 0 && config.basicAuth.length === 0) log.warn("no apiTokens or basicAuth configured: the API is open to anyone who can reach it");
    registerPeerRoute(app, transport);
    const server = Bun.serve({
      hostname: config.host,
      port: config.port,
      fetch: app.fetch,
      websocket: peerWebSocket,
      ...(tls === null ? {} : { tls: { cert: tls.cert, key: tls.key } }),
    });
    this.partial.push(() => server.stop(true));
    // Runs before the server stops (steps run in reverse): requests waiting for room get their 503.
    this.partial.push(() => acceptQueue.stop());
    const advertise = config.advertise ?? `${config.host}:${server.port}`;
    const initialCluster = config.initialCluster ?? { [config.nodeId]: advertise };
    const how = await driver.start(database.client, config.join ? null : Object.keys(initialCluster));
    this.partial.push(() => driver.stop());
    group = new Group({ nodeId: config.nodeId, driver, transport, state, log, initialCluster });
    group.start();
    const packages = new PackageRuntime({ nodeId: config.nodeId, group, driver, transport, state, log: log.child({ component: "packages" }), timing: packageTiming, omiTarget: omiTargetOf(config), consumers });
    packages.start();
    this.partial.push(() => packages.stop());
    const local = new LocalPolicies(config.localPolicies, { nodeId: config.nodeId, log: log.child({ component: "local-policies" }) });
    local.start();
    this.partial.push(() => local.stop());
    this.running = { database, server, transport, driver, group, state, advertise, kernels, packages, local, acceptQueue };
    log.info("node started", { url: this.url, advertise, dataDir: this.dataDir, dataDirState: claim, raft: how, version });
  }

  /** Idempotent; safe to call from a signal handler while start() is still running. */
  async stop(): Promise<void> {
    const steps = this.partial.reverse();
    this.partial = [];
    const wasRunning = this.running !== null;
    this.running = null;
    for (const step of steps) await step();
    if (wasRunning) this.log.info("node stopped");
  }

  get url(): string {
    assert(this.running !== null, "node not started");
    return `${this.config.tlsCertFile === null ? "http" : "https"}://${this.config.host}:${this.running.server.port}`;
  }

  status(): NodeStatus {
    const base = { nodeId: this.config.nodeId, version, uptimeMs: Date.now() - this.startedAtMs, dataDir: this.dataDir };
    const running = this.running;
    if (running === null) return base;
    return {
      ...base,
      advertise: running.advertise,
      kernels: running.kernels.status,
      ...describeStatus({ driver: running.driver, transport: running.transport, state: running.state }),
      // Listener requests this node has in Raft and waiting for room (acceptBatching): a burst shows here.
      accept: running.acceptQueue.stats(),
      ...describeConfig(running),
    };
  }
}

/** The configuration part of `/api/v1/status`: versions, and each HA package's holder and lease. */
function describeConfig(running: Running) {
  const config = running.state.config;
  const { packages, runningVersion } = running.packages.status();
  const deadLetters = new Map(running.state.outbox.deadLetterStatus().map((d) => [d.package, d]));
  return {
    config: {
      deployedVersion: config.current?.version ?? null,
      outbox: running.state.outbox.status().map((o) => ({
        ...o,
        // Events the target refused on their own (GET /api/v1/outbox/<package>/dead-letters lists them).
        deadLetters: deadLetters.get(o.package)?.deadLetters ?? 0,
        deadLetterBytes: deadLetters.get(o.package)?.deadLetterBytes ?? 0,
        deadLettersDropped: deadLetters.get(o.package)?.deadLettersDropped ?? 0,
        lastDeadLetter: deadLetters.get(o.package)?.lastDeadLetter ?? null,
        oldestAgeMs: o.oldestAcceptedAtMs === null ? null : Math.max(0, Date.now() - o.oldestAcceptedAtMs),
        budgetBytes: config.outboxBudgets.get(o.package) ?? outboxLimits.bytesPerPackageDefault,
        // Near the budget new events will soon be refused: say so before it happens.
        alarm: backlogAlarm(o, config.outboxBudgets.get(o.package) ?? outboxLimits.bytesPerPackageDefault),
      })),
      runningVersion,
      nodes: Object.fromEntries([...config.nodeReports].map(([node, report]) => [node, { runningVersion: report.runningVersion }])),
    },
    packages,
    localPolicies: running.local.status(),
    runners: running.packages.runnerStatus(),
  };
}

/** The node's OMi target with its secret read from the environment and its CA from disk. */
function omiTargetOf(config: NodeConfig): OmiTarget | null {
  const target = config.omiTarget;
  if (target === null) return null;
  const password = target.passwordEnv === undefined ? undefined : process.env[target.passwordEnv];
  return {
    baseUrl: target.url,
    timeoutMs: forwardingLimits.requestTimeoutMs,
    ...(target.user === undefined ? {} : { user: target.user }),
    ...(password === undefined ? {} : { password }),
    ...(target.caFile === undefined ? {} : { ca: readFileSync(target.caFile, "utf8") }),
  };
}

/** Past the alarm share of either bound (the package's disk budget, or the count of events), the backlog is about to be refused. */
function backlogAlarm(o: { readonly backlog: number; readonly backlogBytes: number }, budgetBytes: number): string | null {
  if (o.backlogBytes >= budgetBytes * outboxLimits.alarmFraction) return `backlog ${o.backlogBytes} of ${budgetBytes} bytes (outboxBytesMax): the target is not keeping up or unreachable; new events are refused past the budget`;
  if (o.backlog >= outboxLimits.eventsPerPackageMax * outboxLimits.alarmFraction) return `backlog ${o.backlog} of ${outboxLimits.eventsPerPackageMax} events: the target is not keeping up or unreachable; new events are refused past the bound`;
  return null;
}
