// `geokv up --verbose` as parsed (src/cli/args.ts): present only when asked,
// so `geokv up` parses as it always has.

import { describe, expect, it } from "vitest";
import { parseCli } from "../../src/cli/args.js";

describe("geokv up --verbose", () => {
  it("is true when given and absent otherwise", () => {
    expect(parseCli(["up", "--verbose"])).toEqual({ cmd: "up", regions: "regions", data: ".geokv", flags: {}, verbose: true });
    expect(parseCli(["up"])).not.toHaveProperty("verbose");
  });

  it("takes no value", () => {
    expect(parseCli(["up", "--verbose=yes"])).toMatchObject({ cmd: "error" });
  });
});
