import { describe, expect, it } from "vitest";
import type { ClientConnection } from "./client.ts";
import { ClientRegistry } from "./client-registry.ts";

/** What the registry touches of a client: its cancel key. */
function client(): ClientConnection {
  return { cancelPid: 0, cancelSecret: 0 } as ClientConnection;
}

describe("ClientRegistry", () => {
  it("gives each client a pid of its own and finds it by its full cancel key only", () => {
    const r = new ClientRegistry();
    const all = Array.from({ length: 200 }, client);
    for (const x of all) r.add(x);
    expect(new Set(all.map((x) => x.cancelPid)).size).toBe(200);
    expect(all.every((x) => Number.isInteger(x.cancelPid) && x.cancelPid > 0)).toBe(true);
    expect(r.size).toBe(200);
    const [a, b] = all as [ClientConnection, ClientConnection];
    expect(r.byCancelKey(b.cancelPid, b.cancelSecret)).toBe(b);
    expect(r.byCancelKey(b.cancelPid, b.cancelSecret ^ 1)).toBeUndefined();
    expect(
      r.byCancelKey(a.cancelPid, b.cancelSecret === a.cancelSecret ? ~a.cancelSecret : b.cancelSecret),
    ).toBeUndefined();
    expect(r.byCancelKey(0, a.cancelSecret)).toBeUndefined();
  });

  it("forgets a client that left, and walks only the clients present, in order of arrival", () => {
    const r = new ClientRegistry();
    const [a, b, c] = [client(), client(), client()];
    for (const x of [a, b, c]) r.add(x);
    r.delete(b);
    expect(r.byCancelKey(b.cancelPid, b.cancelSecret)).toBeUndefined();
    expect([...r]).toEqual([a, c]);
    const d = client();
    r.add(d);
    expect(r.byCancelKey(d.cancelPid, d.cancelSecret)).toBe(d);
    const walked: ClientConnection[] = [];
    r.forEach((x) => walked.push(x));
    expect(walked).toEqual([a, c, d]);
    expect(r.size).toBe(3);
  });

  it("ignores the deletion of a client it does not hold under that pid", () => {
    const r = new ClientRegistry();
    const a = client();
    r.add(a);
    const stranger = client();
    stranger.cancelPid = a.cancelPid;
    r.delete(stranger);
    r.delete(stranger);
    expect([...r]).toEqual([a]);
    expect(r.size).toBe(1);
    r.delete(a);
    r.delete(a);
    expect(r.size).toBe(0);
  });

  it("lets a walk go on past the client it is on leaving", () => {
    const r = new ClientRegistry();
    const all = [client(), client(), client(), client()];
    for (const x of all) r.add(x);
    const seen: ClientConnection[] = [];
    r.forEach((x) => {
      seen.push(x);
      r.delete(x);
    });
    expect(seen).toEqual(all);
    expect(r.size).toBe(0);
  });
});
