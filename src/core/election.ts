// The in-region leader election (DESIGN.md "Leadership in a region"): Bully
// ranking made split-brain safe with durable epochs and votes, majority
// acceptance, a pre-vote, leases and fencing tokens. A pure state machine;
// the runtime drives it:
//
// - initElection(cfg, persisted, localVv, now, random) at start, with the
//   durable {epoch, vote} from storage (zeros and null the first time).
// - step(state, input, now, random) for every input, `now` from a monotonic
//   clock (performance.now()), `random` from Math.random():
//   - {type: "tick"} at least every heartbeatMs (heartbeatMs / 2 recommended);
//   - {type: "message"} for each election control frame from a region peer,
//     parsed with parseElectionMsg;
//   - {type: "local_vv"} whenever the node's version vector grows;
//   - {type: "stepdown"} / {type: "promote"} for the operator endpoints.
// - For each output: write `persist` (epoch and vote) durably FIRST, then send
//   `send` as JSON control frames (best effort: loss, duplication and
//   reordering are tolerated), then act on `events`.
// - Take writes only while isActiveLeader(state); stamp replicated batches
//   with fencingToken(region, state).
// - Acceptors push ops: when this node sends an `accept` to a coordinator, the
//   runtime streams it the ops the coordinator's `coordinator.vv` lacks; the
//   coordinator only becomes active once local_vv shows it holds them.

export * from "./election/types.js";
export { REJECT_REASON_CHARS_MAX, parseElectionMsg, type ParsedElectionMsg } from "./election/wire.js";
export {
  REGION_MEMBERS_MAX,
  durableOf,
  epochOf,
  fencingToken,
  initElection,
  isActiveLeader,
  leaderOf,
  phaseOf,
  roleOf,
  step,
} from "./election/machine.js";
export { ABSTAIN_TIMEOUT_FACTOR, CATCH_UP_TIMEOUT_FACTOR } from "./election/transitions.js";
