/**
 * @module One batch POSTed to an HTTP target (OMi or a webhook), and what the answer means for the
 * outbox: delivered (2xx), worth retrying (network error, timeout, 408, 429, 5xx), or refused for
 * good (any other 4xx, and any redirect: retrying the same bytes cannot help, and the batch must be
 * reported, never silently dropped).
 */
import type { SendOutcome } from "./forward-target.ts";

export interface BatchPost {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | Uint8Array<ArrayBuffer>;
  readonly timeoutMs: number;
  /** PEM CA for a private certificate. */
  readonly ca?: string;
  /** Appended to a redirect's refusal: which setting to fix. */
  readonly redirectHint: string;
}

export async function postBatch(post: BatchPost): Promise<SendOutcome> {
  let response: Response;
  try {
    response = await fetch(post.url, {
      method: "POST",
      headers: post.headers,
      body: post.body,
      signal: AbortSignal.timeout(post.timeoutMs),
      // A followed 301/302 turns the POST into a bodiless GET that the other side may answer 200:
      // a "delivery" of nothing. Never follow one; report it.
      redirect: "manual",
      ...(post.ca === undefined ? {} : { tls: { ca: post.ca } }),
    });
  } catch (error) {
    return { kind: "retry", reason: (error as Error).message };
  }
  const body = await response.text().catch(() => "");
  return outcomeOf({ status: response.status, body, location: response.headers.get("location"), redirectHint: post.redirectHint });
}

/** Pure: the outcome of an HTTP answer. */
export function outcomeOf(answer: { readonly status: number; readonly body: string; readonly location: string | null; readonly redirectHint: string }): SendOutcome {
  const { status } = answer;
  if (status >= 200 && status < 300) return { kind: "delivered", status };
  if (status === 408 || status === 429 || status >= 500) return { kind: "retry", reason: `HTTP ${status}` };
  if (status >= 300 && status < 400) return { kind: "refused", status, reason: `HTTP ${status} redirect to ${answer.location ?? "?"}: ${answer.redirectHint}` };
  return { kind: "refused", status, reason: `HTTP ${status}: ${answer.body.slice(0, 200)}` };
}
