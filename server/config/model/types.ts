/**
 * @module The opsconn configuration model, as OMi shapes HA for an Operations Connector: the
 * connected server (the HA group and its nodes), policies, HA package policies that group them,
 * aspects (CI type "Running Software") that bundle packages, and management templates (CI type
 * "Operations Connector System") that bundle aspects and are deployed to the connected server.
 *
 * A `ConfigModel` only ever comes out of `parseModel`: valid, normalized (defaults filled in) and in
 * canonical order (named objects sorted by name). Code that holds one may rely on that, which is
 * why every type here is readonly. The document's `apiVersion` is a property of the text format,
 * not of the model: export writes it, parsing checks it.
 */

export const modelApiVersion = "opsconn/v1";

export const listenerTypes = ["event-listener", "metric-listener", "topology-listener"] as const;
export const pullTypes = ["event-pull", "metric-pull", "topology-pull"] as const;
export const policyTypes = [...listenerTypes, ...pullTypes] as const;
export const inputFormats = ["xml", "json"] as const;
export const ruleActions = ["send", "suppress"] as const;
export const unmatchedActions = ["send", "ignore"] as const;
export const packageComponents = ["events", "metrics", "topology", "backsync"] as const;
export const syncItemTypes = ["backsync-target"] as const;
export const forwardTypes = ["omi", "webhook", "websocket"] as const;
export const aspectCiType = "Running Software";
export const templateCiType = "Operations Connector System";

export type ListenerType = (typeof listenerTypes)[number];
export type PullType = (typeof pullTypes)[number];
export type PolicyType = (typeof policyTypes)[number];
export type InputFormat = (typeof inputFormats)[number];
export type RuleAction = (typeof ruleActions)[number];
export type UnmatchedAction = (typeof unmatchedActions)[number];
export type PackageComponent = (typeof packageComponents)[number];
export type SyncItemType = (typeof syncItemTypes)[number];
export type ForwardType = (typeof forwardTypes)[number];

/** A validation finding: where (`policies[2].rules[0].if.regex`) and what. */
export interface Problem {
  readonly path: string;
  readonly message: string;
}

export type ModelResult = { readonly ok: true; readonly model: ConfigModel } | { readonly ok: false; readonly problems: readonly Problem[] };

export interface ConfigModel {
  /** null until the HA group is configured. */
  readonly connectedServer: ConnectedServer | null;
  readonly policies: readonly Policy[];
  readonly packages: readonly HaPackage[];
  readonly aspects: readonly Aspect[];
  readonly templates: readonly ManagementTemplate[];
}

export interface ConnectedServer {
  readonly name: string;
  readonly description?: string;
  /** Sorted by id; ids and FQDNs unique. */
  readonly nodes: readonly ServerNode[];
}

export interface ServerNode {
  /** The node id the HA group knows the node by (NodeConfig.nodeId). */
  readonly id: string;
  /** host:port */
  readonly fqdn: string;
}

/** A constant, a default or a value a rule sets. */
export type ScalarValue = string | number;

/**
 * Where a mapped field comes from: a dotted path into the input record (`labels.instance`), a
 * template with `${dotted.path}` placeholders (any string containing "${"), or a constant.
 */
export type FieldSource = string | { readonly const: ScalarValue };

export interface Mapping {
  /** Dotted path to an array in the input: one record per element. Absent: the input is one record. */
  readonly each?: string;
  /** Target field name → source, in the user's order. */
  readonly fields: Readonly<Record<string, FieldSource>>;
}

export type Condition =
  | { readonly field: string; readonly equals: string | number | boolean }
  | { readonly field: string; readonly regex: string }
  | { readonly field: string; readonly gt: number }
  | { readonly field: string; readonly gte: number }
  | { readonly field: string; readonly lt: number }
  | { readonly field: string; readonly lte: number }
  | { readonly field: string; readonly exists: boolean }
  | { readonly and: readonly Condition[] }
  | { readonly or: readonly Condition[] }
  | { readonly not: Condition };

export interface Rule {
  /** Unique within its policy. */
  readonly name: string;
  /** Absent: the rule matches every record. */
  readonly if?: Condition;
  readonly action: RuleAction;
  /** Fields to set on a matching record; strings may hold `${dotted.path}` placeholders. */
  readonly set?: Readonly<Record<string, ScalarValue>>;
}

interface PolicyCommon {
  readonly name: string;
  readonly description?: string;
  readonly inputFormat: InputFormat;
  /** Only with inputFormat "json". */
  readonly mapping?: Mapping;
  readonly defaults: Readonly<Record<string, ScalarValue>>;
  /** In order: the first match wins. */
  readonly rules: readonly Rule[];
  /** What happens to a record no rule matched. */
  readonly unmatched: UnmatchedAction;
}

/** Receives data pushed to it on an HTTP path. */
export interface ListenerPolicy extends PolicyCommon {
  readonly type: ListenerType;
  readonly path: string;
}

/** Fetches data from a URL every `intervalSec`. */
export interface PullPolicy extends PolicyCommon {
  readonly type: PullType;
  readonly url: string;
  readonly intervalSec: number;
  /** At most intervalSec: polls of one policy never overlap. */
  readonly timeoutSec: number;
}

export type Policy = ListenerPolicy | PullPolicy;

export interface SyncItem {
  readonly type: SyncItemType;
  /** Unique within its package. */
  readonly name: string;
  readonly url: string;
}

/**
 * Where a package's holder forwards its outbox. Secrets never enter this replicated model: a
 * webhook's Authorization value is read on the forwarding node from the environment variable
 * `authorizationEnv` names.
 */
export type PackageForward =
  /** OMi's event web service at the node's `omiTarget` (the default when `forward` is absent). */
  | { readonly type: "omi" }
  | {
      readonly type: "webhook";
      /** http or https, without credentials in it. */
      readonly url: string;
      /** Extra request headers, in the user's order; names unique ignoring case. */
      readonly headers?: Readonly<Record<string, string>>;
      readonly authorizationEnv?: string;
    }
  /** Consumers subscribe over `GET /ws/forward/<package>` on the holder. */
  | { readonly type: "websocket" };

/** An "HA package policy": policies that run together on one node of the group at a time. */
export interface HaPackage {
  readonly name: string;
  readonly description?: string;
  /** Policy names, in the user's order; a policy belongs to at most one package. */
  readonly policies: readonly string[];
  readonly components: readonly PackageComponent[];
  readonly syncItems: readonly SyncItem[];
  /** Relative load, for balancing packages over nodes. */
  readonly weight: number;
  /** Absent: OMi, as `{ type: "omi" }`. */
  readonly forward?: PackageForward;
  /** Disk budget of the package's undelivered events, in bytes; absent: outboxLimits.bytesPerPackageDefault. */
  readonly outboxBytesMax?: number;
}

export interface Aspect {
  readonly name: string;
  readonly description?: string;
  readonly ciType: typeof aspectCiType;
  /** Package names, in the user's order. */
  readonly packages: readonly string[];
}

export interface ManagementTemplate {
  readonly name: string;
  readonly description?: string;
  readonly ciType: typeof templateCiType;
  /** Aspect names, in the user's order. */
  readonly aspects: readonly string[];
}

/** A package a deployment activates, with its policies resolved. */
export interface ResolvedPackage {
  readonly name: string;
  readonly weight: number;
  readonly components: readonly PackageComponent[];
  readonly syncItems: readonly SyncItem[];
  /** In the package's order. */
  readonly policies: readonly Policy[];
  /** The package's target, with the default filled in. */
  readonly forward: PackageForward;
}

export type ResolveResult = { readonly ok: true; readonly packages: readonly ResolvedPackage[] } | { readonly ok: false; readonly problems: readonly Problem[] };
