// The dashboard in a real browser (Debian's headless Chromium, driven by
// playwright-core) against a real cluster of 3 regions x 3 node processes,
// used the way a person would: the page loads with no console error and shows
// three regions with one leader each and live updates (more than two a
// second); "Cut eu-west off" (after asking for the admin token, once) shows
// eu-west's links down; a key written in eu-west and, through the page, in
// us-east during the partition shows as a conflict with its winner and loser
// once "Heal" brought the links back; stepping down ap-south's leader elects
// another. It saves screenshots to test-results/ (dashboard-partition.png
// during the partition, dashboard.png at the end; docs/dashboard.png is one
// of the latter). Every wait has a deadline; the browser and the nodes are
// always stopped.
import { mkdirSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, regionLeader, startProcCluster, type ProcCluster } from "../support/proc-cluster.js";
import { CHROMIUM_INSTALL_TIMEOUT_MS, launchChromium } from "./chromium.js";

const REGIONS = ["us-east", "eu-west", "ap-south"];
const ADMIN = "dashboard-test-admin";
/** Deadline of one condition on the page (convergence after a heal on a loaded machine included). */
const WAIT_MS = 30_000;
const SCREENSHOTS = "test-results";

let cluster: ProcCluster | undefined;
let browser: Browser | undefined;
let background: { stop(): Promise<void> } | undefined;

/** A few writes a second in every region while the test runs, so the write-rate chart has something to show. */
function writeInEveryRegion(c: ProcCluster): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      await Promise.all(REGIONS.map((r) => call(`${c.urls.get(`${r}-${1 + (i % 3)}`)}/counters/visits-${r}`, "POST", { delta: 1 }).catch(() => null)));
      await new Promise((done) => setTimeout(done, 150));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

beforeAll(async () => {
  // Launch first: a missing browser fails in seconds, before nine nodes start.
  browser = await launchChromium();
  cluster = await startProcCluster(REGIONS.map((region) => ({ region, nodes: 3 })), { env: { GEOKV_ADMIN_TOKEN: ADMIN } });
  for (const r of REGIONS) await regionLeader(cluster, r, WAIT_MS);
  background = writeInEveryRegion(cluster);
}, CHROMIUM_INSTALL_TIMEOUT_MS + 120_000);

afterAll(async () => {
  await background?.stop();
  await browser?.close();
  await cluster?.close();
});

/*
 * Conditions on the page are CSS selectors that Playwright's locators poll
 * (page.waitForFunction evaluates its predicate with eval, which the page's
 * CSP rightly forbids, so the CSP is tested too).
 */

/** Waits until some element matches `selector`, or fails saying `what`. */
async function until(page: Page, what: string, selector: string): Promise<void> {
  try {
    await page.locator(selector).first().waitFor({ state: "attached", timeout: WAIT_MS });
  } catch (err) {
    throw new Error(`the page never showed ${what} within ${WAIT_MS} ms (${selector}): ${(err as Error).message.split("\n")[0]}`);
  }
}

/** Waits until exactly `n` elements match `selector`. */
async function untilCount(page: Page, what: string, selector: string, n: number): Promise<void> {
  await expect.poll(() => page.locator(selector).count(), { timeout: WAIT_MS, interval: 100, message: `the page never showed ${what} (${selector})` }).toBe(n);
}

/** Waits until the region's card and every row in it show the links `links`. */
async function untilLinks(page: Page, region: string, links: "up" | "down"): Promise<void> {
  const card = `article[data-region="${region}"]`;
  await until(page, `${region}'s links ${links}`, `${card}[data-links="${links}"]`);
  await untilCount(page, `every row of ${region} ${links}`, `${card} tr[data-node]:not([data-link="${links}"]):not([data-link="self"])`, 0);
}

describe("the dashboard in headless Chromium", () => {
  it("shows the cluster live, cuts eu-west off and heals it, shows the conflict, steps a leader down", async () => {
    const c = cluster as ProcCluster;
    const base = c.urls.get("us-east-1") as string;
    const page = await (browser as Browser).newPage({ viewport: { width: 1600, height: 1000 } });
    const consoleErrors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => consoleErrors.push(`uncaught: ${e.message}`));
    const prompts: string[] = [];
    page.on("dialog", (d) => {
      prompts.push(d.message());
      void d.accept(ADMIN);
    });

    await page.goto(`${base}/`);
    // Three regions, one leader each, every link up.
    await untilCount(page, "three regions with one leader each and every link up", 'article[data-region][data-leader-count="1"][data-links="up"]:not([data-leader=""])', 3);
    expect(await page.locator("article[data-region]").evaluateAll((cards) => cards.map((c) => c.getAttribute("data-region")))).toEqual([...REGIONS].sort());
    expect(await page.locator("#chart canvas").count()).toBeGreaterThan(0);

    // Live: ten more snapshots within 5 s, at least two a second (the node sends 2.5).
    const before = Number(await page.getAttribute("body", "data-updates"));
    const t0 = Date.now();
    await expect.poll(async () => Number(await page.getAttribute("body", "data-updates")), { timeout: WAIT_MS, interval: 50 }).toBeGreaterThanOrEqual(before + 10);
    expect(Date.now() - t0).toBeLessThan(5000);

    // eu-west's leader, while us-east-1 still hears from it.
    const euLeader = await page.getAttribute('article[data-region="eu-west"]', "data-leader");
    expect(euLeader).toMatch(/^eu-west-\d$/);

    // Cut eu-west off: the page asks for the admin token, then eu-west's links go down.
    await page.click('article[data-region="eu-west"] button[data-action="cut"]');
    await untilLinks(page, "eu-west", "down");
    expect(prompts).toHaveLength(1);
    expect(prompts[0]).toContain("GEOKV_ADMIN_TOKEN");

    // Conflicting writes on both sides: eu-west directly, us-east through the page.
    const key = `dashboard-conflict-${Date.now()}`;
    const eu = await call(`${c.urls.get(euLeader as string)}/kv/${key}`, "PUT", "written in eu-west");
    expect(eu.status).toBe(200);
    await page.fill("#write-key", key);
    await page.fill("#write-value", '"written in us-east"');
    await page.click('#write-form button[type="submit"]');
    // Arrived in us-east and ap-south; eu-west, cut off, holds its own version.
    for (const [r, state] of [["us-east", "arrived"], ["ap-south", "arrived"], ["eu-west", "other"]]) {
      await until(page, `the write ${state === "arrived" ? "arrived" : "not arrived"} in ${r}`, `#arrivals tr[data-region="${r}"][data-state="${state}"]`);
    }

    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard-partition.png`, fullPage: true });

    // Heal: the links come back, the conflict is recorded with its winner and loser, every region holds the winner.
    await page.click('article[data-region="eu-west"] button[data-action="heal"]');
    await untilLinks(page, "eu-west", "up");
    const row = page.locator(`#conflicts tr[data-key="${key}"]`).first();
    await row.waitFor({ timeout: WAIT_MS });
    const winner = await row.getAttribute("data-winner");
    const loser = await row.getAttribute("data-loser");
    expect([winner, loser].filter((n) => n?.startsWith("eu-west-"))).toHaveLength(1);
    expect([winner, loser].filter((n) => n?.startsWith("us-east-"))).toHaveLength(1);
    await page.locator("#write-status").filter({ hasText: /in every region|every region holds/ }).waitFor({ timeout: WAIT_MS });

    // Step down ap-south's leader: another node of ap-south leads.
    const apLeader = await page.getAttribute('article[data-region="ap-south"]', "data-leader");
    await page.click('article[data-region="ap-south"] button[data-action="stepdown"]');
    await until(page, `a leader of ap-south other than ${apLeader}`, `article[data-region="ap-south"][data-leader-count="1"]:not([data-leader=""]):not([data-leader="${apLeader}"])`);
    const status = await call(`${c.urls.get("ap-south-1")}/status`);
    expect(status.body.leader).not.toBe(apLeader);
    // The token was asked for once, and kept for the later controls.
    expect(prompts).toHaveLength(1);

    // Let the chart show a few seconds of the writes after the heal, then keep a picture.
    await until(page, "this node's role changes", "#role-changes tbody tr[data-role]");
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard.png`, fullPage: true });
    expect(consoleErrors).toEqual([]);
  }, 240_000);
});
