/**
 * @module Peer authentication by challenge-response over a shared cluster secret (HMAC-SHA256).
 *
 * The acceptor sends a fresh nonce; the dialer proves knowledge of the secret with
 *   HMAC(secret, "dialer" ‖ acceptorNonce ‖ dialerId ‖ acceptorId)
 * and sends its own fresh nonce; the acceptor answers with
 *   HMAC(secret, "acceptor" ‖ dialerNonce ‖ acceptorNonce ‖ dialerId ‖ acceptorId).
 * The role label keeps one side's proof from ever being valid as the other's (no reflection); the
 * ids bind a proof to this pair of nodes; the nonces, fresh per connection, make a recorded proof
 * useless later (no replay). Every field is length-prefixed so no two inputs share an encoding.
 * The secret never crosses the wire.
 *
 * Everything here is pure (nonces are arguments); `randomNonce` is the one shell function.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { assert } from "../assert.ts";
import { transportLimits } from "../constants.ts";
import type { NodeId } from "../raft/types.ts";
import { PROOF_BYTES } from "./codec.ts";

export interface DialerProofInput {
  readonly secret: Uint8Array;
  readonly acceptorNonce: Uint8Array;
  readonly dialerId: NodeId;
  readonly acceptorId: NodeId;
}

export interface AcceptorProofInput extends DialerProofInput {
  readonly dialerNonce: Uint8Array;
}

const encoder = new TextEncoder();

function hmac(secret: Uint8Array, label: string, parts: readonly Uint8Array[]): Uint8Array {
  assert(secret.length >= transportLimits.secretBytesMin, () => `cluster secret must be at least ${transportLimits.secretBytesMin} bytes`);
  const mac = createHmac("sha256", secret);
  mac.update(encoder.encode(label));
  for (const part of parts) {
    // A 4-byte big-endian length before each part: unambiguous framing of the MAC input.
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, part.length);
    mac.update(length);
    mac.update(part);
  }
  const out = new Uint8Array(mac.digest());
  assert(out.length === PROOF_BYTES, "HMAC-SHA256 yields 32 bytes");
  return out;
}

function checkNonce(nonce: Uint8Array, what: string): void {
  assert(nonce.length === transportLimits.nonceBytes, () => `${what} must be ${transportLimits.nonceBytes} bytes`);
}

export function dialerProof(input: DialerProofInput): Uint8Array {
  checkNonce(input.acceptorNonce, "acceptor nonce");
  return hmac(input.secret, "opsconn/peer/dialer/v1", [input.acceptorNonce, encoder.encode(input.dialerId), encoder.encode(input.acceptorId)]);
}

export function acceptorProof(input: AcceptorProofInput): Uint8Array {
  checkNonce(input.acceptorNonce, "acceptor nonce");
  checkNonce(input.dialerNonce, "dialer nonce");
  return hmac(input.secret, "opsconn/peer/acceptor/v1", [
    input.dialerNonce,
    input.acceptorNonce,
    encoder.encode(input.dialerId),
    encoder.encode(input.acceptorId),
  ]);
}

/** Constant-time comparison; a proof of the wrong length is simply wrong. */
export function proofsEqual(expected: Uint8Array, actual: Uint8Array): boolean {
  if (expected.length !== actual.length) return false;
  return timingSafeEqual(expected, actual);
}

export function verifyDialerProof(input: DialerProofInput & { readonly proof: Uint8Array }): boolean {
  return proofsEqual(dialerProof(input), input.proof);
}

export function verifyAcceptorProof(input: AcceptorProofInput & { readonly proof: Uint8Array }): boolean {
  return proofsEqual(acceptorProof(input), input.proof);
}

/** Shell: a fresh cryptographically random nonce. */
export function randomNonce(): Uint8Array {
  return new Uint8Array(randomBytes(transportLimits.nonceBytes));
}

/** The configured secret as bytes (a string is taken as UTF-8). */
export function secretBytes(secret: string | Uint8Array): Uint8Array {
  const bytes = typeof secret === "string" ? encoder.encode(secret) : secret;
  assert(bytes.length >= transportLimits.secretBytesMin, () => `cluster secret must be at least ${transportLimits.secretBytesMin} bytes`);
  return bytes;
}
