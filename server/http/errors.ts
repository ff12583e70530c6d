/**
 * @module One error shape for every HTTP failure: `{ "error": { "status", "message", ... } }`.
 * Client errors name the problem; unexpected ones are logged and answered with a bare 500, never a
 * stack trace.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "../log/logger.ts";

export function errorBody(status: number, message: string, details?: Record<string, unknown>) {
  return { error: { status, message, ...details } };
}

export function onError(log: Logger) {
  return (error: Error, c: Context) => {
    if (error instanceof HTTPException) {
      if (error.res !== undefined) return error.getResponse();
      const status = error.status as ContentfulStatusCode;
      return c.json(errorBody(status, error.message), status);
    }
    log.error("request failed", { method: c.req.method, path: c.req.path, error });
    return c.json(errorBody(500, "internal error"), 500);
  };
}

export function notFound(c: Context) {
  return c.json(errorBody(404, `no route for ${c.req.method} ${c.req.path}`), 404);
}
