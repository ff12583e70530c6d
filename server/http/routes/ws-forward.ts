/**
 * @module `GET /ws/forward/<package>`: a WebSocket consumer of a package's events, upgraded with
 * hono/bun's `upgradeWebSocket` on the node's one port (the Bun server's `websocket` handler,
 * peerWebSocket, passes every non-peer socket to hono). A thin adapter: the protocol, the
 * holder check and the batches live in server/connector/forwarding (consumer-registry.ts,
 * websocket-target.ts). A request that is no WebSocket upgrade, or names no valid package, is a
 * 4xx JSON error before any upgrade.
 */
import type { ServerWebSocket } from "bun";
import { Hono } from "hono";
import { upgradeWebSocket } from "hono/bun";
import { HTTPException } from "hono/http-exception";
import { assert } from "../../assert.ts";
import { consumerPathPrefix } from "../../connector/forwarding/consumer-protocol.ts";
import type { ConsumerConnection, ConsumerRegistry, ConsumerSocket } from "../../connector/forwarding/consumer-registry.ts";
import { namePattern } from "../../config/model/parse-model.ts";

/** RFC 6455 §5.5: a close frame's reason fits in 123 bytes. */
const closeReasonBytesMax = 123;

export function wsForwardRoutes(registry: ConsumerRegistry): Hono {
  const routes = new Hono();
  routes.get(
    `${consumerPathPrefix}:package`,
    async (c, next) => {
      const name = c.req.param("package");
      if (!namePattern.test(name)) throw new HTTPException(400, { message: `package: '${name.slice(0, 64)}' is not a package name` });
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket") throw new HTTPException(426, { message: `${consumerPathPrefix}${name} is a WebSocket endpoint: send a WebSocket upgrade request` });
      await next();
    },
    upgradeWebSocket((c) => {
      const name = c.req.param("package") as string;
      let connection: ConsumerConnection | null = null;
      return {
        onOpen(_event, ws) {
          const raw = ws.raw as ServerWebSocket<unknown> | undefined;
          assert(raw !== undefined, "hono/bun exposes the ServerWebSocket");
          connection = registry.connect(name, consumerSocket(raw));
        },
        onMessage(event) {
          connection?.receive(typeof event.data === "string" ? event.data : null);
        },
        onClose() {
          connection?.closed();
        },
      };
    }),
  );
  return routes;
}

function consumerSocket(raw: ServerWebSocket<unknown>): ConsumerSocket {
  return {
    remote: raw.remoteAddress,
    // 0: dropped; -1: queued behind backpressure (bounded by the batches in flight); else sent.
    send: (text) => raw.readyState === 1 && raw.send(text) !== 0,
    close: (code, reason) => raw.close(code, truncate(reason)),
  };
}

function truncate(reason: string): string {
  const bytes = Buffer.from(reason);
  if (bytes.length <= closeReasonBytesMax) return reason;
  // Cut on a character boundary: decoding a prefix may leave a replacement character; drop it.
  return bytes.subarray(0, closeReasonBytesMax - 3).toString("utf8").replace(/\uFFFD$/, "") + "...";
}
