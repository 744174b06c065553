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
    const [a, b, c] = [client(), client(), client()];
    for (const x of [a, b, c]) r.add(x);
    expect([a, b, c].map((x) => x.cancelPid)).toEqual([1, 2, 3]);
    expect(r.size).toBe(3);
    expect(r.byCancelKey(b.cancelPid, b.cancelSecret)).toBe(b);
    expect(r.byCancelKey(b.cancelPid, b.cancelSecret ^ 1)).toBeUndefined();
    expect(r.byCancelKey(0, a.cancelSecret)).toBeUndefined();
    expect(r.byCancelKey(4, 0)).toBeUndefined();
  });

  it("reuses the pid of a client that left, under a new secret, and walks only the clients present", () => {
    const r = new ClientRegistry();
    const [a, b, c] = [client(), client(), client()];
    for (const x of [a, b, c]) r.add(x);
    const oldSecret = b.cancelSecret;
    r.delete(b);
    expect(r.byCancelKey(2, oldSecret)).toBeUndefined();
    expect([...r]).toEqual([a, c]);
    const d = client();
    let secret = oldSecret;
    // a 1-in-2^31 chance that the new secret repeats the old one: try again rather than flake
    while (secret === oldSecret) {
      r.delete(d);
      r.add(d);
      secret = d.cancelSecret;
    }
    expect(d.cancelPid).toBe(2);
    expect(r.byCancelKey(2, oldSecret)).toBeUndefined();
    expect(r.byCancelKey(2, d.cancelSecret)).toBe(d);
    expect([...r]).toEqual([a, d, c]);
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
    for (const x of r) {
      seen.push(x);
      r.delete(x);
    }
    expect(seen).toEqual(all);
    expect(r.size).toBe(0);
  });
});
