/** Parsing a model document in tests: its problems when it must be refused, its model when it must be accepted. */
import { parseModel } from "../../server/config/model/parse-model.ts";
import type { ConfigModel, Problem } from "../../server/config/model/types.ts";

export function problemsOf(input: unknown): readonly Problem[] {
  const result = parseModel(input);
  if (result.ok) throw new Error("expected problems, the document was accepted");
  return result.problems;
}

export function modelOf(input: unknown): ConfigModel {
  const result = parseModel(input);
  if (!result.ok) throw new Error(`expected a model, got ${JSON.stringify(result.problems, null, 1)}`);
  return result.model;
}
