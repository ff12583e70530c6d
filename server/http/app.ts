/**
 * @module The node's Hono application: shared middleware (body limit, JSON errors) and routes. It is
 * a plain function of its dependencies, so tests drive it in-process with `app.request()`.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { httpLimits } from "../constants.ts";
import type { Logger } from "../log/logger.ts";
import { errorBody, notFound, onError } from "./errors.ts";
import { statusRoutes, type StatusSource } from "./routes/status.ts";

export interface AppDeps {
  readonly log: Logger;
  readonly status: StatusSource;
}

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.use(
    "*",
    bodyLimit({
      maxSize: httpLimits.bodyBytesMax,
      onError: (c) => c.json(errorBody(413, `request body exceeds ${httpLimits.bodyBytesMax} bytes`), 413),
    }),
  );
  app.route("/", statusRoutes(deps.status));
  app.notFound(notFound);
  app.onError(onError(deps.log));
  return app;
}
