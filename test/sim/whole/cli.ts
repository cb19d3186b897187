// npm run sim -- [--seed N | --runs K [--from S]] [--mutation NAME] [--topology 3,3,3] [--verbose]
//
// --seed N     replays the schedule of seed N (and shrinks it to a minimal one if it fails)
// --runs K     a campaign: seeds S .. S+K-1 (S from --from, default 1); stops at the first failure
// --mutation   switches off one guard (src/core/mutations.ts) to see the checks catch it
// --topology   nodes per region, e.g. 3,3,3 or 5,3 (default: every topology)
// --snapshots  the schedules that add snapshot faults (lost disks, crashes and cuts at snapshots, deposed leaders)

import { MUTATIONS, parseMutation, type Mutation } from "../../../src/core/mutations.js";
import { runSeed, type SeedResult } from "./explore.js";

interface Args {
  seed: number | null;
  runs: number;
  from: number;
  mutation: Mutation | null;
  topologies: number[][] | undefined;
  snapshots: boolean;
  verbose: boolean;
}

function usage(problem: string): never {
  process.stderr.write(`sim: ${problem}\nusage: npm run sim -- [--seed N | --runs K [--from S]] [--mutation ${MUTATIONS.join("|")}] [--topology 3,3,3] [--snapshots] [--verbose]\n`);
  process.exit(2);
}

function positiveInt(flag: string, text: string | undefined): number {
  const n = Number(text);
  if (text === undefined || !Number.isSafeInteger(n) || n < 1) usage(`${flag} needs a positive integer, got ${text ?? "nothing"}`);
  return n;
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { seed: null, runs: 1, from: 1, mutation: null, topologies: undefined, snapshots: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    switch (flag) {
      case "--seed":
        a.seed = positiveInt(flag, value);
        i++;
        break;
      case "--runs":
        a.runs = positiveInt(flag, value);
        i++;
        break;
      case "--from":
        a.from = positiveInt(flag, value);
        i++;
        break;
      case "--mutation": {
        const m = parseMutation(value ?? "");
        if (m === null) usage(`unknown mutation ${value ?? "(none)"}; one of ${MUTATIONS.join(", ")}`);
        a.mutation = m;
        i++;
        break;
      }
      case "--topology": {
        const sizes = (value ?? "").split(",").map(Number);
        if (sizes.length === 0 || sizes.some((n) => !Number.isSafeInteger(n) || n < 1 || n > 7)) usage(`--topology needs region sizes 1..7 like 3,3,3, got ${value ?? "nothing"}`);
        a.topologies = [sizes];
        i++;
        break;
      }
      case "--snapshots":
        a.snapshots = true;
        break;
      case "--verbose":
        a.verbose = true;
        break;
      default:
        usage(`unknown argument ${flag}`);
    }
  }
  return a;
}

function report(r: SeedResult): void {
  process.stdout.write(`\nFAILED: seed ${r.seed}\n${r.error ?? ""}\n`);
  if (r.shrunk !== undefined) process.stdout.write(`\nminimal schedule (fast-check shrank it):\n${JSON.stringify(r.shrunk)}\n`);
  process.stdout.write(`\nreplay: npm run sim -- --seed ${r.seed}${args.mutation ? ` --mutation ${args.mutation}` : ""}${args.snapshots ? " --snapshots" : ""}\n`);
}

const args = parseArgs(process.argv.slice(2));
const first = args.seed ?? args.from;
const count = args.seed !== null ? 1 : args.runs;
const started = performance.now();
let steps = 0;
let acked = 0;
for (let i = 0; i < count; i++) {
  const seed = first + i;
  const r = runSeed(seed, { topologies: args.topologies, mutation: args.mutation, shrink: true, schedules: args.snapshots ? "snapshots" : "base" });
  if (!r.ok) {
    report(r);
    process.exit(1);
  }
  steps += r.result?.steps ?? 0;
  acked += r.result?.acked ?? 0;
  if (args.verbose || count === 1) process.stdout.write(`seed ${seed}: ok ${JSON.stringify(r.result)}\n`);
  else if ((i + 1) % 100 === 0) process.stdout.write(`${i + 1} of ${count} schedules passed (${Math.round((performance.now() - started) / 1000)} s)\n`);
}
process.stdout.write(`${count} schedule${count === 1 ? "" : "s"} passed from seed ${first}: ${steps} events, ${acked} acknowledged writes, ${Math.round((performance.now() - started) / 1000)} s${args.mutation ? ` (mutation ${args.mutation})` : ""}\n`);
