// A family rendered a chunk at a time is what one prom-client metric with the same series gives, byte
// for byte, while the event loop turns between chunks.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { watchTurns } from "../test/support/wait.ts";
import { ChunkedHistogram, LINES_PER_CHUNK, SampledFamily, type Sample } from "./metric-chunks.ts";

const config = {
  name: "pgbouncer_pools_client_wait_seconds",
  help: "Time clients waited\nfor a server \\ connection",
  buckets: [0.001, 0.01, 0.1, 1, 10],
  labelNames: ["database", "user"] as ("database" | "user")[],
};
/** A line per bucket, +Inf, _sum and _count. */
const SERIES_PER_CHUNK = Math.floor(LINES_PER_CHUNK / (config.buckets.length + 3));

const tenant = (i: number): { database: string; user: string } => ({
  // quotes, backslashes and newlines are escaped in label values
  database: i % 7 === 0 ? `we"ird\\name\n${i}` : `tenant_${i}`,
  user: i % 2 === 0 ? "app" : "postgres",
});

/** The same series in a ChunkedHistogram and in one plain Histogram. */
function histograms(): {
  chunked: ChunkedHistogram<"database" | "user">;
  plain: () => Promise<string>;
  track: (labels: { database: string; user: string }) => (value: number) => void;
  release: (labels: { database: string; user: string }) => void;
} {
  const chunked = new ChunkedHistogram(config);
  const registry = new Registry();
  const histogram = new Histogram({ ...config, registers: [registry] });
  return {
    chunked,
    plain: () => registry.getSingleMetricAsString(config.name),
    track(labels) {
      const observe = chunked.track(labels);
      histogram.zero(labels);
      return (value) => {
        observe(value);
        histogram.observe(labels, value);
      };
    },
    release(labels) {
      chunked.release(labels);
      histogram.remove(labels);
    },
  };
}

describe("ChunkedHistogram", () => {
  it("renders what one Histogram renders, byte for byte, a chunk of series per event-loop turn", async () => {
    const h = histograms();
    const n = SERIES_PER_CHUNK * 5 + 3;
    for (let i = 0; i < n; i++) {
      const observe = h.track(tenant(i));
      for (let k = 0; k < i % 4; k++) observe((i * (k + 1)) / 1000);
    }
    // series gone from the first chunk and the last
    for (const i of [0, 5, n - 1]) h.release(tenant(i));

    const { result, turns } = await watchTurns(() => h.chunked.render());
    expect(result).toBe(await h.plain());
    expect(turns).toBeGreaterThanOrEqual(6);
  });

  it("renders no series as one Histogram does, and series that left make room for new ones", async () => {
    const h = histograms();
    expect(await h.chunked.render()).toBe(await h.plain());

    for (let i = 0; i < SERIES_PER_CHUNK * 2; i++) h.track(tenant(i))(0.5);
    for (let i = 0; i < SERIES_PER_CHUNK; i++) h.release(tenant(i));
    for (let i = SERIES_PER_CHUNK * 2; i < SERIES_PER_CHUNK * 3; i++) h.track(tenant(i))(0.05);

    // the new series fill the first chunk: the order of the series differs, not the lines
    const lines = (text: string): string[] => text.split("\n").sort();
    expect(lines(await h.chunked.render())).toEqual(lines(await h.plain()));
  });

  it("keeps a series two holders track, its counts and all, until both have let it go", async () => {
    const h = histograms();
    h.track(tenant(1))(0.5);
    // a second pool of the same database and user: its observations add to the first one's
    const second = h.chunked.track(tenant(1));
    second(0.05);
    h.chunked.release(tenant(1));
    const registry = new Registry();
    const both = new Histogram({ ...config, registers: [registry] });
    for (const value of [0.5, 0.05]) both.observe(tenant(1), value);
    expect(await h.chunked.render()).toBe(await registry.getSingleMetricAsString(config.name));

    h.release(tenant(1));
    expect(await h.chunked.render()).toBe(await h.plain());
  });
});

describe("SampledFamily", () => {
  /** The text of one prom-client metric of `type` holding `samples`, as a collect() would set them. */
  async function plain(type: "gauge" | "counter", labelNames: string[], samples: Sample[]): Promise<string> {
    const registry = new Registry();
    const metric = new (type === "gauge" ? Gauge : Counter)({ ...config, labelNames, registers: [registry] });
    metric.reset();
    for (const [labels, value] of samples) {
      if (metric instanceof Gauge) metric.set(labels, value);
      else metric.inc(labels, value);
    }
    return registry.getSingleMetricAsString(config.name);
  }

  it("renders what one gauge or counter renders, byte for byte, a chunk of samples per event-loop turn", async () => {
    const samples: Sample[] = Array.from({ length: LINES_PER_CHUNK * 3 + 1 }, (_, i) => [tenant(i), i / 7]);
    for (const type of ["gauge", "counter"] as const) {
      const family = new SampledFamily(type, { ...config, labelNames: ["database", "user"] }, () => samples);
      const { result, turns } = await watchTurns(() => family.render());
      expect(result).toBe(await plain(type, ["database", "user"], samples));
      expect(turns).toBeGreaterThanOrEqual(4);
    }
  });

  it("renders no samples, and one without labels, as one gauge or counter does", async () => {
    for (const type of ["gauge", "counter"] as const) {
      for (const [labelNames, samples] of [
        [["database"], []],
        [[], []],
        [[], [[{}, 3]]],
      ] as [string[], Sample[]][]) {
        const family = new SampledFamily(type, { ...config, labelNames }, () => samples);
        expect(await family.render()).toBe(await plain(type, labelNames, samples));
      }
    }
  });
});
