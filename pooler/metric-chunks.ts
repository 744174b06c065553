// Metric families rendered a chunk of series at a time. prom-client makes a metric's text in one
// synchronous go (Registry#getSingleMetricAsString) and has no public way to render part of a
// metric's series: at 5,000 pools that go was up to 0.6 s for one family, with every client waiting.
// So each chunk is a metric of its own, in a Registry of its own, rendered by prom-client with the
// event loop let go between chunks, and the chunks' texts are joined into the family's one metric
// would give.
import { setImmediate } from "node:timers/promises";
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** Sample lines a chunk renders: a few ms of the event loop, tens on a loaded machine. */
export const LINES_PER_CHUNK = 1000;

type Labels = Record<string, string>;
export type Sample = [Labels, number];

/** Chunks' texts, each starting with the family's # HELP and # TYPE lines, as one family's text. */
class FamilyText {
  private readonly parts: string[] = [];

  add(text: string): void {
    // prom-client escapes newlines in help texts: the header is exactly two lines
    const body = text.indexOf("\n", text.indexOf("\n") + 1);
    if (this.parts.length === 0) this.parts.push(text);
    else if (body >= 0) this.parts.push(text.slice(body + 1));
  }

  toString(): string {
    return this.parts.join("\n");
  }
}

interface Shard {
  histogram: Histogram;
  registry: Registry;
  size: number;
}

/** A series and how many track it: two pools of one database and user share their labels. */
interface Series {
  shard: Shard;
  holders: number;
}

/** A Histogram whose series (one per pool) live in shards of a chunk's worth each. */
export class ChunkedHistogram<L extends string> {
  private readonly shards: Shard[] = [];
  private readonly series = new Map<string, Series>();
  private readonly seriesPerShard: number;

  constructor(private readonly config: { name: string; help: string; buckets: number[]; labelNames: L[] }) {
    // a line per bucket, +Inf, _sum and _count
    this.seriesPerShard = Math.max(1, Math.floor(LINES_PER_CHUNK / (config.buckets.length + 3)));
  }

  /**
   * One more holder of the series, which starts at zero if it is new (one held already keeps its
   * counts: they are the other holder's too); returns what observes into it.
   */
  track(labels: Record<L, string>): (value: number) => void {
    const key = this.keyOf(labels);
    let series = this.series.get(key);
    if (!series) {
      // a series that left made room: refilling it keeps the shards few under autodb churn
      const shard = this.shards.find((s) => s.size < this.seriesPerShard) ?? this.addShard();
      shard.size++;
      shard.histogram.zero(labels);
      series = { shard, holders: 0 };
      this.series.set(key, series);
    }
    series.holders++;
    const { histogram } = series.shard;
    return (value) => histogram.observe(labels, value);
  }

  /** One holder of the series fewer: it goes with the last. */
  release(labels: Record<L, string>): void {
    const key = this.keyOf(labels);
    const series = this.series.get(key);
    if (!series || --series.holders > 0) return;
    series.shard.histogram.remove(labels);
    series.shard.size--;
    this.series.delete(key);
  }

  /** The family's text, as Registry#getSingleMetricAsString gives it for one Histogram. */
  async render(): Promise<string> {
    const family = new FamilyText();
    for (const shard of this.shards.length > 0 ? this.shards : [this.addShard()]) {
      family.add(await shard.registry.getSingleMetricAsString(this.config.name));
      await setImmediate();
    }
    return family.toString();
  }

  private keyOf(labels: Record<L, string>): string {
    return this.config.labelNames.map((n) => labels[n]).join("\u0000");
  }

  private addShard(): Shard {
    const registry = new Registry();
    const histogram = new Histogram({ ...this.config, registers: [registry] });
    const shard = { histogram, registry, size: 0 };
    this.shards.push(shard);
    return shard;
  }
}

/**
 * A gauge or counter whose samples are read at each scrape, rendered a chunk of them at a time
 * through one scratch metric: one render at a time.
 */
export class SampledFamily {
  private readonly registry = new Registry();
  private readonly metric: Gauge | Counter;

  constructor(
    type: "gauge" | "counter",
    private readonly config: { name: string; help: string; labelNames: readonly string[] },
    private readonly samples: () => Sample[],
  ) {
    const Metric = type === "gauge" ? Gauge : Counter;
    this.metric = new Metric({ ...config, registers: [this.registry] });
  }

  /** The family's text, as Registry#getSingleMetricAsString gives it for one metric with all samples. */
  async render(): Promise<string> {
    const samples = this.samples();
    const family = new FamilyText();
    for (let i = 0; i === 0 || i < samples.length; i += LINES_PER_CHUNK) {
      // a chunk holds its own samples only (and a counter, which can only grow, restarts at zero)
      this.metric.reset();
      for (const [labels, value] of samples.slice(i, i + LINES_PER_CHUNK)) {
        if (this.metric instanceof Gauge) this.metric.set(labels, value);
        else this.metric.inc(labels, value);
      }
      family.add(await this.registry.getSingleMetricAsString(this.config.name));
      await setImmediate();
    }
    return family.toString();
  }
}
