/**
 * A group's commands that leave one event package deployed and held, for state-machine tests: node
 * n1 ("a:1") is a member, the model has one JSON event listener (path "x") in package "pkg",
 * deployed from template "t", and n1 holds the package at epoch 1.
 */
import type { Command } from "../../server/state/command-codec.ts";

export const onePackageModel = {
  apiVersion: "opsconn/v1",
  connectedServer: { name: "ha", nodes: [{ id: "n1", fqdn: "a:1" }] },
  policies: [{ name: "l", type: "event-listener", path: "x", inputFormat: "json" }],
  packages: [{ name: "pkg", policies: ["l"] }],
  aspects: [{ name: "a", ciType: "Running Software", packages: ["pkg"] }],
  templates: [{ name: "t", ciType: "Operations Connector System", aspects: ["a"] }],
};

export function onePackageDeployed(): Command[] {
  return [
    { kind: "member-set", nodeId: "n1", address: "a:1" },
    { kind: "config", op: { op: "put-model", document: onePackageModel } },
    { kind: "config", op: { op: "deploy", template: "t", atMs: 1 } },
    { kind: "config", op: { op: "assign", basisIndex: 0, changes: [{ package: "pkg", node: "n1", epoch: 1 }] } },
  ];
}
