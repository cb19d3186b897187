// Every property test runs at least 1000 times (FC_NUM_RUNS raises it) and is
// replayable: fast-check prints the seed and path of a failure, and
// FC_SEED=<seed> (with FC_PATH=<path>) reruns exactly that case.
import fc from "fast-check";

const numRuns = Math.max(1000, Number(process.env.FC_NUM_RUNS ?? 1000));
const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
const path = process.env.FC_PATH;

fc.configureGlobal({
  numRuns,
  ...(seed === undefined ? {} : { seed }),
  ...(path === undefined ? {} : { path }),
  // Print the seed and the shrunk counterexample in the failure message.
  verbose: 1,
});
