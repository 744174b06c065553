// The DNS cache's rules, with a resolver whose answers and calls the test controls; a real lookup
// through the pooler is in test/pooler/dns.test.ts.
import type dns from "node:dns";
import { describe, expect, it } from "vitest";
import { DnsCache, type DnsTtls, type Resolve } from "./dns-cache.ts";

const V4 = (address: string): dns.LookupAddress => ({ address, family: 4 });
const V6 = (address: string): dns.LookupAddress => ({ address, family: 6 });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A resolver that counts its calls and answers what `answer` says, after `delayMs`. */
function resolver(answer: (name: string) => dns.LookupAddress[] | Error, delayMs = 0) {
  const calls: string[] = [];
  const resolve: Resolve = async (name) => {
    calls.push(name);
    await sleep(delayMs);
    const a = answer(name);
    if (a instanceof Error) throw a;
    return a;
  };
  return { calls, resolve };
}

function cacheOf(resolve: Resolve, ttls: DnsTtls = { maxTtl: 15_000, nxdomainTtl: 15_000 }): DnsCache {
  return new DnsCache(
    () => ttls,
    () => undefined,
    resolve,
  );
}

/** What net.connect would get: the first address, or all of them. */
function lookup(
  cache: DnsCache,
  name: string,
  options: { all?: boolean; family?: number } = {},
): Promise<{ err: NodeJS.ErrnoException | null; address: string | dns.LookupAddress[] }> {
  return new Promise((resolve) => cache.lookup(name, options, (err, address) => resolve({ err, address })));
}

const notFound = (): Error =>
  Object.assign(new Error("getaddrinfo ENOTFOUND db.example"), { code: "ENOTFOUND" });

describe("DnsCache", () => {
  it("looks a name up once and serves it until dns_max_ttl has passed", async () => {
    const { calls, resolve } = resolver(() => [V4("10.0.0.1")]);
    const cache = cacheOf(resolve, { maxTtl: 150, nxdomainTtl: 0 });
    expect((await lookup(cache, "db.example")).address).toBe("10.0.0.1");
    expect((await lookup(cache, "db.example")).address).toBe("10.0.0.1");
    expect(calls).toEqual(["db.example"]);
    await sleep(200);
    await lookup(cache, "db.example");
    expect(calls).toEqual(["db.example", "db.example"]);
  });

  it("reads the TTLs when an answer arrives, so that a RELOAD applies to the next one", async () => {
    const { calls, resolve } = resolver(() => [V4("10.0.0.1")]);
    const ttls = { maxTtl: 0, nxdomainTtl: 0 };
    const cache = cacheOf(resolve, ttls);
    await lookup(cache, "db.example");
    await lookup(cache, "db.example");
    expect(calls).toHaveLength(2);
    ttls.maxTtl = 60_000;
    await lookup(cache, "db.example");
    await lookup(cache, "db.example");
    expect(calls).toHaveLength(3);
  });

  it("lets connects that need a name being looked up share the lookup", async () => {
    const { calls, resolve } = resolver(() => [V4("10.0.0.1")], 50);
    const cache = cacheOf(resolve);
    const answers = [1, 2, 3].map(() => lookup(cache, "db.example"));
    expect(cache.counts()).toEqual({ names: 1, queries: 1, pending: 3 });
    expect((await Promise.all(answers)).map((a) => a.address)).toEqual(["10.0.0.1", "10.0.0.1", "10.0.0.1"]);
    expect(calls).toHaveLength(1);
    expect(cache.counts()).toEqual({ names: 1, queries: 0, pending: 0 });
  });

  it("starts each connect at the name's next address, as PgBouncer goes round them", async () => {
    const { resolve } = resolver(() => [V4("10.0.0.1"), V4("10.0.0.2"), V4("10.0.0.3")]);
    const cache = cacheOf(resolve);
    const firsts: unknown[] = [];
    for (let i = 0; i < 4; i++) firsts.push((await lookup(cache, "db.example")).address);
    expect(firsts).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.1"]);
    // with happy eyeballs net asks for all of them: the same order, the rest behind as fallbacks
    expect((await lookup(cache, "db.example", { all: true })).address).toEqual([
      V4("10.0.0.2"),
      V4("10.0.0.3"),
      V4("10.0.0.1"),
    ]);
  });

  it("answers only the family asked for, and says so when the name has none", async () => {
    const { resolve } = resolver(() => [V4("10.0.0.1"), V6("fd00::1")]);
    const cache = cacheOf(resolve);
    expect((await lookup(cache, "db.example", { family: 6, all: true })).address).toEqual([V6("fd00::1")]);
    const v4only = cacheOf(resolver(() => [V4("10.0.0.1")]).resolve);
    const { err } = await lookup(v4only, "db.example", { family: 6 });
    expect(err).toMatchObject({ code: "ENOTFOUND", message: expect.stringContaining("no IPv6 address") });
  });

  it("remembers a failed lookup for dns_nxdomain_ttl, then tries again", async () => {
    let up = false;
    const { calls, resolve } = resolver(() => (up ? [V4("10.0.0.9")] : notFound()));
    const cache = cacheOf(resolve, { maxTtl: 15_000, nxdomainTtl: 150 });
    expect((await lookup(cache, "db.example")).err).toMatchObject({ code: "ENOTFOUND" });
    up = true;
    expect((await lookup(cache, "db.example")).err).toMatchObject({ code: "ENOTFOUND" });
    expect(calls).toHaveLength(1);
    await sleep(200);
    expect(await lookup(cache, "db.example")).toEqual({ err: null, address: "10.0.0.9" });
    expect(calls).toHaveLength(2);
  });

  it("reports the addresses a new lookup no longer gives, also across a failed one", async () => {
    const answers: (dns.LookupAddress[] | Error)[] = [
      [V4("10.0.0.1"), V4("10.0.0.2")],
      [V4("10.0.0.2")],
      notFound(),
      [V4("10.0.0.3")],
    ];
    const { resolve } = resolver(() => answers.shift()!);
    const gone: [string, string[]][] = [];
    const cache = new DnsCache(
      () => ({ maxTtl: 0, nxdomainTtl: 0 }),
      (name, addresses) => gone.push([name, addresses]),
      resolve,
    );
    for (let i = 0; i < 4; i++) await lookup(cache, "db.example");
    expect(gone).toEqual([
      ["db.example", ["10.0.0.1"]],
      ["db.example", ["10.0.0.2"]],
    ]);
  });

  it("lists every name for SHOW DNS_HOSTS as PgBouncer prints it: seconds left, addresses with port 0", async () => {
    const { resolve } = resolver((name) =>
      name === "gone.example" ? notFound() : [V4("10.0.0.1"), V6("fd00::1")],
    );
    const cache = cacheOf(resolve, { maxTtl: 15_000, nxdomainTtl: 0 });
    await lookup(cache, "db.example");
    await lookup(cache, "gone.example");
    const rows = cache.rows();
    expect(rows).toEqual([
      { hostname: "db.example", ttl: expect.any(Number), addrs: "10.0.0.1:0,[fd00::1]:0" },
      { hostname: "gone.example", ttl: 0, addrs: "" },
    ]);
    expect([14, 15]).toContain(rows[0]!.ttl);
  });
});
