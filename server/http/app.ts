/**
 * @module The node's Hono application: shared middleware (body limit, JSON errors) and routes. It is
 * a plain function of its dependencies, so tests drive it in-process with `app.request()`.
 */
import { Hono } from "hono";
import { requestBodyLimit } from "./middleware/body-limit.ts";
import { httpLimits } from "../constants.ts";
import type { Logger } from "../log/logger.ts";
import { errorBody, notFound, onError } from "./errors.ts";
import { statusRoutes, type StatusSource } from "./routes/status.ts";
import { kvRoutes } from "./routes/kv.ts";
import { clusterRoutes, type PeerHttp } from "./routes/cluster.ts";
import type { Group } from "../node/group.ts";
import type { ReplicatedState } from "../state/replicated-state.ts";
import type { Transport } from "../transport/transport.ts";
import { configRoutes } from "./routes/config.ts";
import { eventRoutes } from "./routes/events.ts";
import type { AcceptQueue } from "../connector/events/accept-queue.ts";
import { outboxRoutes } from "./routes/outbox.ts";
import { testFaultRoutes } from "./routes/test-faults.ts";
import { authorize, type ApiToken, type AuthSettings } from "./middleware/auth.ts";
import { wsForwardRoutes } from "./routes/ws-forward.ts";
import type { ConsumerRegistry } from "../connector/forwarding/consumer-registry.ts";

export interface AppDeps {
  readonly log: Logger;
  readonly status: StatusSource;
  /** The group view once the node runs; null while it starts or stops. */
  readonly group: () => Group | null;
  readonly state: ReplicatedState;
  /** How this node reaches other nodes' APIs (membership requests are relayed to the leader). */
  readonly peerHttp: PeerHttp;
  /** API tokens (empty: open API). */
  readonly tokens?: readonly ApiToken[];
  /** Tokens and basic-auth users together (the node passes its config); wins over `tokens`. */
  readonly auth?: AuthSettings;
  /** Set only with --test-faults: the transport the partition switch acts on. */
  readonly testFaults?: Transport | null;
  /** Group commit of listener requests; absent: the event routes keep their own. */
  readonly acceptQueue?: AcceptQueue;
  /** WebSocket consumers of packages' events (`/ws/forward/<package>`); absent: no such route. */
  readonly consumers?: ConsumerRegistry | null;
}

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.use(
    "*",
    requestBodyLimit({
      maxSize: httpLimits.bodyBytesMax,
      onError: (c) => c.json(errorBody(413, `request body exceeds ${httpLimits.bodyBytesMax} bytes`), 413),
    }),
  );
  app.use("*", authorize(deps.auth ?? deps.tokens ?? []));
  app.route("/", statusRoutes(deps.status));
  app.route("/", configRoutes({ group: deps.group, state: deps.state }));
  app.route("/", eventRoutes({ group: deps.group, state: deps.state, ...(deps.acceptQueue === undefined ? {} : { acceptQueue: deps.acceptQueue }) }));
  app.route("/", outboxRoutes({ group: deps.group, state: deps.state }));
  if (deps.consumers != null) app.route("/", wsForwardRoutes(deps.consumers));
  if (deps.testFaults != null) app.route("/", testFaultRoutes(deps.testFaults));
  app.route("/", kvRoutes({ group: deps.group, state: deps.state }));
  app.route("/", clusterRoutes(deps.group, deps.peerHttp));
  app.notFound(notFound);
  app.onError(onError(deps.log));
  return app;
}
