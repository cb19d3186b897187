// The dashboard's static files, served by the node itself: a user's network
// may not reach a CDN, so the page, its script and style, and uPlot (from
// node_modules) all come from here. Only the files named below are served,
// read once and kept in memory (about 70 KB in all).

import { readFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** One file the dashboard serves. */
export interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
}

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * Where the page's own files are: in a checkout, src/dashboard (beside
 * src/http, or seen from dist/http), so that a dist compiled by tsc alone
 * never serves a stale copy; in an installed package, which ships no src,
 * the copy `npm run build` made in dist/dashboard.
 */
function ownDir(): string {
  const candidates = [join(HERE, "../../src/dashboard"), join(HERE, "../dashboard")];
  const found = candidates.find((d) => existsSync(join(d, "index.html")));
  if (found === undefined) throw new Error(`the dashboard's files are missing: looked for index.html in ${candidates.join(" and ")}`);
  return found;
}

function uplotDir(): string {
  return dirname(createRequire(import.meta.url).resolve("uplot/dist/uPlot.iife.min.js"));
}

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

/** The files by the name they are served under (/dashboard/assets/<name>, and "index.html" at /). */
const FILES: Readonly<Record<string, { readonly dir: () => string; readonly file: string; readonly contentType: string }>> = {
  "index.html": { dir: ownDir, file: "index.html", contentType: "text/html; charset=utf-8" },
  "dashboard.js": { dir: ownDir, file: "dashboard.js", contentType: JS },
  "dashboard.css": { dir: ownDir, file: "dashboard.css", contentType: CSS },
  "uPlot.iife.min.js": { dir: uplotDir, file: "uPlot.iife.min.js", contentType: JS },
  "uPlot.min.css": { dir: uplotDir, file: "uPlot.min.css", contentType: CSS },
};

let cache: ReadonlyMap<string, Asset> | undefined;

/** Reads every asset (once); throws naming what is missing. */
export function loadAssets(): ReadonlyMap<string, Asset> {
  cache ??= new Map(Object.entries(FILES).map(([name, f]) => [name, { body: readFileSync(join(f.dir(), f.file)), contentType: f.contentType }]));
  return cache;
}
