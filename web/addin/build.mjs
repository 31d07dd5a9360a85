// Builds the task pane into dist/, which the gateway embeds (web/addin.go).
//   npm ci && npm run build
// dist/ is committed, so the gateway builds without Node; dist/sources.sha256
// records the sources it was built from and the files built, and
// TestAddinBundleUpToDate (Go) fails when a source changed without a
// rebuild, or a built file differs from what the build wrote.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

const here = new URL(".", import.meta.url).pathname;
const dist = join(here, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);

await build({
  entryPoints: [join(here, "src/taskpane.ts")],
  bundle: true,
  format: "esm",
  splitting: true, // MSAL in its own chunk, loaded only with sign-in configured
  minify: true,
  target: ["es2021", "chrome100", "edge100", "safari15"],
  outdir: dist,
  entryNames: "[name]",
  chunkNames: "chunk-[hash]",
  legalComments: "linked",
  logLevel: "info",
});
for (const f of ["taskpane.html", "taskpane.css", "help.html"]) cpSync(join(here, "static", f), join(dist, f));

// The sources and what was built from them, as sha256sum writes them:
// "HASH  PATH", sorted by path. The built files are listed too, so a
// hand-edited or half-committed dist/ fails the Go test as well.
function files(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}
const sources = [
  ...files(join(here, "src")),
  ...files(join(here, "static")),
  ...["build.mjs", "package.json", "package-lock.json", "tsconfig.json"].map((f) => join(here, f)),
  ...files(dist),
]
  .map((p) => relative(here, p))
  .sort();
const lines = sources.map((p) => createHash("sha256").update(readFileSync(join(here, p))).digest("hex") + "  " + p);
writeFileSync(join(dist, "sources.sha256"), lines.join("\n") + "\n");
