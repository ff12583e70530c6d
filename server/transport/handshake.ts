/**
 * @module The peer-link handshake as two pure state machines, one per side, so every path
 * (success, wrong secret, wrong node, unknown peer, out-of-order frame) is tested without sockets.
 *
 *   dialer                          acceptor
 *   hello {from, to}          →
 *                             ←     challenge {acceptorNonce}
 *   auth {proof, dialerNonce} →
 *                             ←     auth-ok {proof}   |   auth-fail {reason}
 *
 * Nothing but these frames is accepted before both sides are authenticated; the shell closes the
 * socket on any failure. Nonces are injected; the shell draws them from the CSPRNG.
 */
import { assert, unreachable } from "../assert.ts";
import type { NodeId } from "../raft/types.ts";
import { acceptorProof, dialerProof, verifyAcceptorProof, verifyDialerProof } from "./auth.ts";
import type { Frame } from "./codec.ts";

export type HandshakeResult =
  | { readonly kind: "pending" }
  | { readonly kind: "authenticated"; readonly peer: NodeId }
  | { readonly kind: "failed"; readonly reason: string };

export interface HandshakeStep {
  /** A frame to send now, if any (sent before acting on the result). */
  readonly send: Frame | null;
  readonly result: HandshakeResult;
}

export interface Handshake {
  /** The frame this side opens with, or null if it waits for the other side. */
  readonly opening: Frame | null;
  receive(frame: Frame): HandshakeStep;
}

const pending: HandshakeResult = { kind: "pending" };

function fail(reason: string, send: Frame | null = null): HandshakeStep {
  return { send, result: { kind: "failed", reason } };
}

export interface DialerHandshakeOptions {
  readonly selfId: NodeId;
  readonly peerId: NodeId;
  readonly secret: Uint8Array;
  readonly nonce: Uint8Array;
}

export class DialerHandshake implements Handshake {
  private state: "await-challenge" | "await-ok" | "done" = "await-challenge";
  private acceptorNonce: Uint8Array | null = null;
  readonly opening: Frame;

  constructor(private readonly options: DialerHandshakeOptions) {
    assert(options.selfId !== options.peerId, "a node does not dial itself");
    this.opening = { type: "hello", from: options.selfId, to: options.peerId };
  }

  receive(frame: Frame): HandshakeStep {
    if (frame.type === "auth-fail") return this.finish(fail(`refused by ${this.options.peerId}: ${frame.reason}`));
    switch (this.state) {
      case "await-challenge":
        if (frame.type !== "challenge") return this.finish(fail(`expected challenge, got ${frame.type}`));
        this.acceptorNonce = frame.nonce;
        this.state = "await-ok";
        return {
          send: { type: "auth", proof: dialerProof(this.proofInput(frame.nonce)), nonce: this.options.nonce },
          result: pending,
        };
      case "await-ok":
        return this.finish(this.checkAcceptor(frame));
      case "done":
        return fail("handshake already finished");
      default:
        return unreachable(this.state);
    }
  }

  private checkAcceptor(frame: Frame): HandshakeStep {
    if (frame.type !== "auth-ok") return fail(`expected auth-ok, got ${frame.type}`);
    assert(this.acceptorNonce !== null, "auth-ok before challenge");
    const ok = verifyAcceptorProof({ ...this.proofInput(this.acceptorNonce), dialerNonce: this.options.nonce, proof: frame.proof });
    if (!ok) return fail(`${this.options.peerId} failed to prove the cluster secret`);
    return { send: null, result: { kind: "authenticated", peer: this.options.peerId } };
  }

  private proofInput(acceptorNonce: Uint8Array) {
    return { secret: this.options.secret, acceptorNonce, dialerId: this.options.selfId, acceptorId: this.options.peerId };
  }

  private finish(step: HandshakeStep): HandshakeStep {
    this.state = "done";
    return step;
  }
}

export interface AcceptorHandshakeOptions {
  readonly selfId: NodeId;
  readonly secret: Uint8Array;
  readonly nonce: Uint8Array;
  /** Why a dialer may not connect (unknown id, wrong dial direction), or null if it may. */
  readonly refuseDialer: (dialerId: NodeId) => string | null;
}

export class AcceptorHandshake implements Handshake {
  private state: "await-hello" | "await-auth" | "done" = "await-hello";
  private dialerId: NodeId | null = null;
  readonly opening = null;

  constructor(private readonly options: AcceptorHandshakeOptions) {}

  receive(frame: Frame): HandshakeStep {
    switch (this.state) {
      case "await-hello":
        return this.handleHello(frame);
      case "await-auth":
        return this.handleAuth(frame);
      case "done":
        return fail("handshake already finished");
      default:
        return unreachable(this.state);
    }
  }

  private handleHello(frame: Frame): HandshakeStep {
    if (frame.type !== "hello") return this.refuse(`expected hello, got ${frame.type}`);
    if (frame.to !== this.options.selfId) return this.refuse(`hello addressed to ${frame.to}, this is ${this.options.selfId}`);
    const refusal = this.options.refuseDialer(frame.from);
    if (refusal !== null) return this.refuse(refusal);
    this.dialerId = frame.from;
    this.state = "await-auth";
    return { send: { type: "challenge", nonce: this.options.nonce }, result: pending };
  }

  private handleAuth(frame: Frame): HandshakeStep {
    if (frame.type !== "auth") return this.refuse(`expected auth, got ${frame.type}`);
    const dialerId = this.dialerId;
    assert(dialerId !== null, "auth before hello");
    const input = { secret: this.options.secret, acceptorNonce: this.options.nonce, dialerId, acceptorId: this.options.selfId };
    if (!verifyDialerProof({ ...input, proof: frame.proof })) return this.refuse(`${dialerId} failed to prove the cluster secret`);
    this.state = "done";
    return {
      send: { type: "auth-ok", proof: acceptorProof({ ...input, dialerNonce: frame.nonce }) },
      result: { kind: "authenticated", peer: dialerId },
    };
  }

  /** The dialer learns why (auth-fail) before the socket closes; secrets never appear in reasons. */
  private refuse(reason: string): HandshakeStep {
    this.state = "done";
    return fail(reason, { type: "auth-fail", reason });
  }
}
