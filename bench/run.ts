// Entry point for `npm run bench [-- name ...]`: runs the named benchmarks
// (all when none is named) one after another and writes each one's section of
// BENCHMARKS.md.

import { writeSection, type BenchSection } from "./report.js";

type Bench = () => Promise<BenchSection>;

const BENCHES: Record<string, () => Promise<Bench>> = {
  core: async () => (await import("./core.js")).run,
  http: async () => (await import("./http.js")).run,
  replication: async () => (await import("./replication.js")).run,
  failover: async () => (await import("./failover.js")).run,
  yjs: async () => (await import("./yjs.js")).run,
  storage: async () => (await import("./storage.js")).run,
  overload: async () => (await import("./overload.js")).run,
};

async function main(): Promise<void> {
  const names = process.argv.slice(2).filter((a) => !a.startsWith("-"));
  const chosen = names.length > 0 ? names : Object.keys(BENCHES);
  for (const name of chosen) {
    const load = BENCHES[name];
    if (!load) {
      console.error(`unknown benchmark ${JSON.stringify(name)}; known: ${Object.keys(BENCHES).join(", ")}`);
      process.exit(2);
    }
    console.log(`== bench ${name}`);
    const section = await (await load())();
    writeSection(section);
    console.log(`wrote section "${section.title}" to BENCHMARKS.md`);
  }
}

await main();
