/**
 * @module What a follower asks the leader over the peer link's app channel, and the answers: run
 * this proposal and tell me its index once applied; or run a ReadIndex round and tell me the index.
 * Pure encoding; the forwarder and its handler are the shell around it.
 */
import { BinaryDecodeError, ByteReader, ByteWriter } from "../state/binary.ts";
import type { NodeId } from "../raft/types.ts";

export type ForwardRequest = { readonly op: "propose"; readonly data: Uint8Array } | { readonly op: "read-index" };

export type ForwardResponse =
  | { readonly status: "ok"; readonly index: number; readonly error: string | null }
  | { readonly status: "not-leader"; readonly leader: NodeId | null }
  | { readonly status: "failed"; readonly reason: "dropped" | "lost" | "unknown"; readonly message: string };

const ops = { propose: 1, "read-index": 2 } as const;
const statuses = { ok: 1, "not-leader": 2, failed: 3 } as const;
const reasons = ["dropped", "lost", "unknown"] as const;

export function encodeForwardRequest(request: ForwardRequest): Uint8Array {
  const out = new ByteWriter(16 + (request.op === "propose" ? request.data.length : 0)).u8(ops[request.op]);
  if (request.op === "propose") out.bytes(request.data);
  return out.finish();
}

export function decodeForwardRequest(data: Uint8Array): ForwardRequest {
  const reader = new ByteReader(data);
  const op = reader.u8("forward op");
  let request: ForwardRequest;
  if (op === ops.propose) request = { op: "propose", data: reader.bytes("proposal") };
  else if (op === ops["read-index"]) request = { op: "read-index" };
  else throw new BinaryDecodeError(`unknown forward op ${op}`);
  reader.end("forward request");
  return request;
}

export function encodeForwardResponse(response: ForwardResponse): Uint8Array {
  const out = new ByteWriter(64).u8(statuses[response.status]);
  if (response.status === "ok") out.f64(response.index).text(response.error ?? "").u8(response.error === null ? 0 : 1);
  else if (response.status === "not-leader") out.text(response.leader ?? "").u8(response.leader === null ? 0 : 1);
  else out.u8(reasons.indexOf(response.reason)).text(response.message);
  return out.finish();
}

export function decodeForwardResponse(data: Uint8Array): ForwardResponse {
  const reader = new ByteReader(data);
  const status = reader.u8("forward status");
  let response: ForwardResponse;
  if (status === statuses.ok) {
    const index = reader.f64("index");
    const error = reader.text("error");
    response = { status: "ok", index, error: reader.u8("error flag") === 1 ? error : null };
  } else if (status === statuses["not-leader"]) {
    const leader = reader.text("leader");
    response = { status: "not-leader", leader: reader.u8("leader flag") === 1 ? leader : null };
  } else if (status === statuses.failed) {
    const reason = reasons[reader.u8("reason")];
    if (reason === undefined) throw new BinaryDecodeError("unknown failure reason");
    response = { status: "failed", reason, message: reader.text("message") };
  } else throw new BinaryDecodeError(`unknown forward status ${status}`);
  reader.end("forward response");
  return response;
}
