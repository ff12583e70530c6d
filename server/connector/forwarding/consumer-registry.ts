/**
 * @module Where the WebSocket route and the package runners meet, one per node (created in
 * connector-node.ts and handed to both: no globals). A runner whose package forwards to WebSocket
 * consumers registers its target here while it holds the package; the route hands every socket to
 * `connect`, and the connection speaks the protocol (consumer-protocol.ts) until it subscribes:
 * then the package's target, if it runs here, takes the consumer; otherwise the answer is
 * `not-holder` (who holds it and where, from the replicated state) and the socket is closed, so
 * the client reconnects there.
 */
import { forwardTargetLimits } from "../../constants.ts";
import type { ReplicatedState } from "../../state/replicated-state.ts";
import { consumerCloseCodes, encodeServerMessage, parseClientMessage, type ServerMessage } from "./consumer-protocol.ts";

/** The route's socket, as the connector sees it. */
export interface ConsumerSocket {
  /** False when the socket dropped the message (closed, or its buffer is full beyond repair). */
  send(text: string): boolean;
  close(code: number, reason: string): void;
  /** For status: the peer's address. */
  readonly remote: string;
}

/** A consumer attached to a package's target. */
export interface ConsumerSession {
  ack(through: number): void;
  /** The socket closed. */
  detach(): void;
}

/** A package's WebSocket target while it runs on this node (websocket-target.ts). */
export interface ConsumerEndpoint {
  /** Takes the consumer, or refuses it: then the socket is told why and closed. */
  attach(socket: ConsumerSocket, after: number): ConsumerSession;
}

export type ConsumerLocation =
  | { readonly kind: "elsewhere"; readonly holder: string | null; readonly address: string | null }
  | { readonly kind: "unavailable"; readonly reason: string };

export interface ConsumerRegistryOptions {
  /** Where a package not served here is held, or why no node serves it. */
  readonly locate: (packageName: string) => ConsumerLocation;
  readonly subscribeTimeoutMs?: number;
  readonly connectionsMax?: number;
}

export class ConsumerRegistry {
  private readonly endpoints = new Map<string, ConsumerEndpoint>();
  private open = 0;

  constructor(private readonly options: ConsumerRegistryOptions) {}

  register(packageName: string, endpoint: ConsumerEndpoint): void {
    this.endpoints.set(packageName, endpoint);
  }

  /** Only the endpoint that registered: a newer runner of the same package may already have. */
  unregister(packageName: string, endpoint: ConsumerEndpoint): void {
    if (this.endpoints.get(packageName) === endpoint) this.endpoints.delete(packageName);
  }

  endpoint(packageName: string): ConsumerEndpoint | null {
    return this.endpoints.get(packageName) ?? null;
  }

  locate(packageName: string): ConsumerLocation {
    return this.options.locate(packageName);
  }

  get connections(): number {
    return this.open;
  }

  /** A new socket for `packageName`; the caller feeds it every message and its close. */
  connect(packageName: string, socket: ConsumerSocket): ConsumerConnection {
    const max = this.options.connectionsMax ?? forwardTargetLimits.consumerConnectionsMax;
    this.open++;
    const connection = new ConsumerConnection(this, packageName, socket, () => this.open--);
    if (this.open > max) connection.fail(consumerCloseCodes.tooMany, `too many consumer connections on this node (at most ${max})`);
    else connection.expectSubscribe(this.options.subscribeTimeoutMs ?? forwardTargetLimits.consumerSubscribeTimeoutMs);
    return connection;
  }
}

export class ConsumerConnection {
  private state: "new" | "subscribed" | "closed" = "new";
  private session: ConsumerSession | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly registry: ConsumerRegistry,
    private readonly packageName: string,
    private readonly socket: ConsumerSocket,
    private readonly onEnd: () => void,
  ) {}

  expectSubscribe(timeoutMs: number): void {
    this.timer = setTimeout(() => this.fail(consumerCloseCodes.subscribeTimeout, `no subscribe within ${timeoutMs} ms`), timeoutMs);
  }

  /** One message; `null` for a binary one. */
  receive(text: string | null): void {
    if (this.state === "closed") return;
    const parsed = parseClientMessage(text);
    if (!parsed.ok) return this.fail(consumerCloseCodes.protocolError, parsed.error);
    const message = parsed.message;
    if (message.type === "ack") {
      if (this.session === null) return this.fail(consumerCloseCodes.protocolError, "ack before subscribe");
      return this.session.ack(message.through);
    }
    if (this.state === "subscribed") return this.fail(consumerCloseCodes.protocolError, "already subscribed on this connection");
    this.subscribe(message.after);
  }

  /** The socket closed (either side). */
  closed(): void {
    if (this.state === "closed") return;
    this.end();
    this.session?.detach();
  }

  /** An error message, then the close: the consumer learns why. */
  fail(code: number, message: string): void {
    if (this.state === "closed") return;
    this.send({ type: "error", v: 1, message });
    this.close(code, message);
  }

  private subscribe(after: number): void {
    const endpoint = this.registry.endpoint(this.packageName);
    if (endpoint !== null) {
      this.clearTimer();
      this.state = "subscribed";
      this.session = endpoint.attach(this.socket, after);
      return;
    }
    const location = this.registry.locate(this.packageName);
    if (location.kind === "unavailable") return this.fail(consumerCloseCodes.unknownPackage, location.reason);
    // The holder may be this very node, still starting the package: the client retries after a pause.
    this.send({ type: "not-holder", v: 1, holder: location.holder, address: location.address });
    this.close(consumerCloseCodes.notHolder, location.holder === null ? "no node holds the package now" : `package held by ${location.holder}`);
  }

  private send(message: ServerMessage): void {
    this.socket.send(encodeServerMessage(message));
  }

  private close(code: number, reason: string): void {
    const session = this.session;
    this.end();
    session?.detach();
    this.socket.close(code, reason);
  }

  private end(): void {
    this.clearTimer();
    this.state = "closed";
    this.onEnd();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/**
 * Where `packageName`'s consumers should go, from this node's replicated state: its holder and the
 * holder's address from membership; or why none will serve it.
 */
export function locateConsumerEndpoint(state: ReplicatedState, packageName: string): ConsumerLocation {
  const deployment = state.config.current;
  // A package removed while it still holds undelivered events keeps its holder and its target until
  // they are forwarded (package-runtime.ts), so its consumers are served as before.
  const draining = deployment?.packages.includes(packageName) !== true && (state.outbox.status().find((o) => o.package === packageName)?.backlog ?? 0) > 0;
  const pkg = deployment?.packages.includes(packageName) === true ? deployment.model.packages.find((p) => p.name === packageName) : draining ? (state.config.lastDeployedPackage(packageName) ?? undefined) : undefined;
  if (pkg === undefined) return { kind: "unavailable", reason: `no deployed package '${packageName.slice(0, 64)}'` };
  const type = pkg.forward?.type ?? "omi";
  if (type !== "websocket") return { kind: "unavailable", reason: `package '${packageName}' forwards to ${type}, not to WebSocket consumers` };
  const holder = state.config.assignments.get(packageName)?.node ?? null;
  return { kind: "elsewhere", holder, address: holder === null ? null : (state.members.get(holder) ?? null) };
}
