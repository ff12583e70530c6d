/**
 * @module `import path from "x.wasm" with { type: "file" }` yields a path string: the file on disk
 * under `bun run`, an embedded `/$bunfs/...` path in a `bun build --compile` binary. Bun's own
 * types declare this for .txt/.toml and the like but not for .wasm.
 */
declare module "*.wasm" {
  const path: string;
  export default path;
}
