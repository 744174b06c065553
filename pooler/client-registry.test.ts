import { describe, expect, it } from "vitest";
import type { ClientConnection } from "./client.ts";
import { CANCEL_TTL_MASK, ClientRegistry, peerOfCancelKey } from "./client-registry.ts";

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

  it("with a peer_id, writes it into every key as PgBouncer does, and finds a client whatever TTL is left", () => {
    // 0x1234 puts different bytes in the pid's two peer bytes: their order shows
    const r = new ClientRegistry(0x1234);
    const all = Array.from({ length: 3000 }, client);
    for (const x of all) r.add(x);
    expect(r.size).toBe(3000);
    for (const x of all) {
      expect(x.cancelPid).toBeGreaterThan(0);
      expect(peerOfCancelKey(x.cancelPid)).toBe(0x1234);
      const key = Buffer.alloc(8);
      key.writeInt32BE(x.cancelPid, 0);
      key.writeInt32BE(x.cancelSecret, 4);
      expect(key.readUInt8(1) + key.readUInt8(2) * 256).toBe(0x1234);
      expect(key.readUInt8(7) & CANCEL_TTL_MASK).toBe(CANCEL_TTL_MASK);
    }
    // random bits beyond the peer bytes: 3,000 distinct keys, no pid shared by many
    expect(new Set(all.map((x) => `${x.cancelPid}/${x.cancelSecret}`)).size).toBe(3000);
    expect(new Set(all.map((x) => x.cancelPid)).size).toBeGreaterThan(2500);
    const [a, b] = all as [ClientConnection, ClientConnection];
    for (let ttl = 0; ttl <= CANCEL_TTL_MASK; ttl++) {
      expect(r.byCancelKey(a.cancelPid, (a.cancelSecret & ~CANCEL_TTL_MASK) | ttl)).toBe(a);
    }
    expect(r.byCancelKey(a.cancelPid, a.cancelSecret ^ 4)).toBeUndefined();
    expect(r.byCancelKey(a.cancelPid, b.cancelSecret)).toBeUndefined();
    r.delete(a);
    expect(r.byCancelKey(a.cancelPid, a.cancelSecret)).toBeUndefined();
    expect(r.byCancelKey(b.cancelPid, b.cancelSecret)).toBe(b);
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
