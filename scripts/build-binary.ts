/**
 * @module `npm run build`: the single-file `dist/opsconn` via `bun build --compile`.
 *
 * Two things do not travel by themselves and are handled here:
 * - libsql loads its native addon with a computed `require(\`@libsql/${target}\`)`, which the
 *   bundler cannot follow; a plugin rewrites it to a static require of this platform's addon, so
 *   the addon is embedded in the binary.
 * - SQL migrations are read at boot by tag; they are added as extra entrypoints, which embeds
 *   them (Bun.embeddedFiles) under their own names.
 * The WASM kernels are embedded by their `with { type: "file" }` imports.
 */
import { Glob, type BunPlugin } from "bun";
import { existsSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const outfile = process.argv[2] ?? join(root, "dist/opsconn");

function libsqlTarget(): string {
  const arch = process.arch === "x64" ? "x64" : process.arch;
  const target = `${process.platform}-${arch}-gnu`;
  const addon = join(root, "node_modules/@libsql", target, "index.node");
  if (!existsSync(addon)) throw new Error(`no libsql native addon for ${target} at ${addon}`);
  return target;
}

const staticLibsqlAddon: BunPlugin = {
  name: "static-libsql-addon",
  setup(build) {
    const target = libsqlTarget();
    build.onLoad({ filter: /[\\/]node_modules[\\/]libsql[\\/]index\.js$/ }, async (args) => {
      const source = await Bun.file(args.path).text();
      const dynamic = "return require(`@libsql/${target}`);";
      if (!source.includes(dynamic)) throw new Error(`libsql loader changed; update ${import.meta.path}`);
      return { contents: source.replace(dynamic, `return require("@libsql/${target}/index.node");`), loader: "js" };
    });
  },
};

const migrations = [...new Glob("migrations/*.sql").scanSync(root)].map((f) => join(root, f));
const result = await Bun.build({
  entrypoints: [join(root, "server/main.ts"), ...migrations],
  compile: { outfile },
  naming: { asset: "[name].[ext]" },
  plugins: [staticLibsqlAddon],
  minify: true,
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built ${outfile}`);
