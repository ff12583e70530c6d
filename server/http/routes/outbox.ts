/**
 * @module A package's dead letters (server/state/outbox.ts): events its target refused on their own,
 * moved out of the outbox so they no longer block the events behind them.
 * - `GET /api/v1/outbox/<package>/dead-letters?after=SEQ&limit=N` (role read): the dead letters with
 *   seq > SEQ, oldest first, at most N (default 100, at most 1,000); `next` is the `after` of the next
 *   page, null at the end. Linearizable (ReadIndex) unless `?stale=true`, like key-value reads.
 * - `POST /api/v1/outbox/<package>/dead-letters/requeue` (role admin), `{"seqs": [...]}` or
 *   `{"all": true}`: once the cause is fixed (OMi's configuration, say), the dead letters go back into
 *   the outbox as new events, at its end, with new seqs and ids; all or nothing, within the package's
 *   budget like any accepted event. Answered once committed on a majority and applied here.
 */
import { Hono, type Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Group } from "../../node/group.ts";
import type { ReplicatedState } from "../../state/replicated-state.ts";
import { encodeCommand } from "../../state/command-codec.ts";
import { namePattern } from "../../config/model/parse-model.ts";
import { deadLetterLimits } from "../../constants.ts";
import { groupErrorResponse, runningGroup } from "../group-errors.ts";
import { errorBody } from "../errors.ts";

export interface OutboxRoutesDeps {
  readonly group: () => Group | null;
  readonly state: ReplicatedState;
  /** The time recorded as the requeued events' acceptance; tests fix it. */
  readonly nowMs?: () => number;
}

const requeueNote = "requeued dead letters are new events: they get new seqs and ids (receivers that dedup by id see them as new)";

export function outboxRoutes(deps: OutboxRoutesDeps): Hono {
  const routes = new Hono();
  const nowMs = deps.nowMs ?? Date.now;

  routes.get("/api/v1/outbox/:package/dead-letters", async (c) => {
    const name = packageOf(c);
    const after = countParam(c.req.query("after"), "after", { default: 0, min: 0, max: Number.MAX_SAFE_INTEGER });
    const limit = countParam(c.req.query("limit"), "limit", { default: deadLetterLimits.pageDefault, min: 1, max: deadLetterLimits.pageMax });
    if (c.req.query("stale") !== "true") {
      try {
        await runningGroup(deps.group).readBarrier();
      } catch (error) {
        return groupErrorResponse(c, error);
      }
    }
    const { outbox, config } = deps.state;
    if (!outbox.has(name) && !config.deployedPackages.has(name)) return c.json(errorBody(404, `package '${name}': not deployed, and it has no outbox`), 404);
    const letters = outbox.deadLetters(name, after, limit);
    const totals = outbox.deadLetterStatus().find((s) => s.package === name);
    return c.json({
      package: name,
      deadLetters: letters.map((d) => ({ id: d.id, seq: d.seq, event: d.event, reason: d.reason, at: { logIndex: d.index, timeMs: d.atMs }, acceptedAtMs: d.acceptedAtMs })),
      next: letters.length === limit ? letters.at(-1)!.seq : null,
      total: totals?.deadLetters ?? 0,
      deadLettersDropped: totals?.deadLettersDropped ?? 0,
    });
  });

  routes.post("/api/v1/outbox/:package/dead-letters/requeue", async (c) => {
    const name = packageOf(c);
    const seqs = requeueSeqs(await c.req.json().catch(() => undefined));
    const group = runningGroup(deps.group);
    try {
      const { index, result } = await group.propose(encodeCommand({ kind: "outbox", op: { op: "requeue", package: name, atMs: nowMs(), seqs } }));
      if (!result.ok) {
        const status = requeueErrorStatus(result.error);
        return c.json(errorBody(status, result.error, status === 503 ? { retry: true } : undefined), status);
      }
      await group.waitApplied(index);
      const outcome = deps.state.outbox.takeResult(index);
      // Applied, but this node's state was replaced by a snapshot meanwhile: the new ids are unknown here.
      if (outcome === undefined || !outcome.ok || !("requeued" in outcome)) return c.json({ package: name, requeued: null, note: `${requeueNote}; this node lost track of them (list the outbox on the holder)` });
      return c.json({ package: name, requeued: outcome.requeued, note: requeueNote });
    } catch (error) {
      return groupErrorResponse(c, error);
    }
  });
  return routes;
}

function packageOf(c: Context): string {
  const name = c.req.param("package") ?? "";
  if (!namePattern.test(name)) throw new HTTPException(400, { message: "package: must be 1-63 characters of letters, digits, '.', '_' or '-', starting with a letter or digit" });
  return name;
}

const digits = /^[0-9]{1,16}$/;

function countParam(text: string | undefined, field: string, range: { readonly default: number; readonly min: number; readonly max: number }): number {
  if (text === undefined) return range.default;
  const value = digits.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < range.min || value > range.max) throw new HTTPException(400, { message: `${field}: must be an integer from ${range.min} to ${range.max}` });
  return value;
}

/** `{"seqs": [positive integers, each once]}` or `{"all": true}`, nothing else. */
function requeueSeqs(body: unknown): readonly number[] | "all" {
  const shape = 'body: expected JSON {"seqs": [seq, ...]} or {"all": true}';
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HTTPException(400, { message: shape });
  const { seqs, all, ...rest } = body as { seqs?: unknown; all?: unknown };
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new HTTPException(400, { message: `${unknown[0]}: unknown field; ${shape}` });
  if (all !== undefined && seqs !== undefined) throw new HTTPException(400, { message: `seqs and all: give one of them; ${shape}` });
  if (all !== undefined) {
    if (all !== true) throw new HTTPException(400, { message: "all: must be true" });
    return "all";
  }
  if (!Array.isArray(seqs) || seqs.length === 0 || seqs.length > deadLetterLimits.requeueSeqsMax) throw new HTTPException(400, { message: `seqs: must hold 1 to ${deadLetterLimits.requeueSeqsMax} sequence numbers; ${shape}` });
  const seen = new Set<number>();
  for (const [i, seq] of seqs.entries()) {
    if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) throw new HTTPException(400, { message: `seqs[${i}]: must be a positive integer` });
    if (seen.has(seq)) throw new HTTPException(400, { message: `seqs[${i}]: ${seq} appears more than once` });
    seen.add(seq);
  }
  return seqs as number[];
}

/** The state machine's refusals (outbox.ts `requeue`), as HTTP statuses. */
function requeueErrorStatus(error: string): ContentfulStatusCode {
  if (error.includes("not deployed")) return 409;
  if (error.includes("are not dead letters")) return 404;
  if (error.startsWith("outbox full")) return 503;
  return 400;
}
