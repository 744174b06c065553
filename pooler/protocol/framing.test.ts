import { describe, expect, it } from "vitest";
import { FrameScanner, ProtocolViolation, takeStartupPacket, type FrameVisitor } from "./framing.ts";
import { commandComplete, dataRow, parameterStatus, query, readyForQuery, terminate } from "./messages.ts";

/** Records what the scanner reports and emits; Terminate ('X') is rewritten to nothing. */
function recorder(inspectAll = true): FrameVisitor & { seen: string[]; out: Buffer[] } {
  const seen: string[] = [];
  const out: Buffer[] = [];
  return {
    seen,
    out,
    mustInspect: () => inspectAll,
    mayRewrite: (t) => t === 0x58,
    message: (t, chunk, start, end) => {
      expect(chunk[start]).toBe(t);
      expect(chunk.readUInt32BE(start + 1)).toBe(end - start - 1);
      seen.push(`${String.fromCharCode(t)}:${end - start}`);
    },
    rewrite: (t, msg) => void seen.push(`rewrite ${String.fromCharCode(t)}:${msg.length}`),
    pass: (b) => void out.push(b),
    streams: (t) => void seen.push(`streams ${String.fromCharCode(t)}`),
    streamBody: (b, last) => {
      out.push(b);
      if (last) seen.push("streamed");
    },
    rewritesPrefix: () => false,
  };
}

const stream = Buffer.concat([
  query("SELECT 1"),
  parameterStatus("TimeZone", "UTC"),
  dataRow(["x".repeat(300), null]),
  terminate(),
  commandComplete("SELECT 1"),
  readyForQuery("I"),
]);
const forwarded = Buffer.concat([
  query("SELECT 1"),
  parameterStatus("TimeZone", "UTC"),
  dataRow(["x".repeat(300), null]),
  commandComplete("SELECT 1"),
  readyForQuery("I"),
]);

describe("FrameScanner", () => {
  it("sees the same messages and forwards the same bytes however the stream is split in two", () => {
    const whole = recorder();
    new FrameScanner(1 << 20).feed(stream, whole);
    for (let cut = 0; cut <= stream.length; cut++) {
      const r = recorder();
      const s = new FrameScanner(1 << 20);
      s.feed(stream.subarray(0, cut), r);
      s.feed(stream.subarray(cut), r);
      expect(r.seen, `cut at ${cut}`).toEqual(whole.seen);
      expect(Buffer.concat(r.out).equals(forwarded), `bytes at cut ${cut}`).toBe(true);
      expect(s.atBoundary).toBe(true);
    }
  });

  it("handles the stream delivered one byte at a time", () => {
    const r = recorder();
    const s = new FrameScanner(1 << 20);
    for (let i = 0; i < stream.length; i++) s.feed(stream.subarray(i, i + 1), r);
    expect(Buffer.concat(r.out).equals(forwarded)).toBe(true);
    expect(r.seen).toContain("rewrite X:5");
  });

  it("forwards a whole chunk of complete messages as the chunk itself (no copy)", () => {
    const chunk = Buffer.concat([commandComplete("SELECT 1"), readyForQuery("I")]);
    const r = recorder();
    new FrameScanner(1 << 20).feed(chunk, r);
    expect(r.out).toHaveLength(1);
    expect(r.out[0]).toBe(chunk);
  });

  it("streams a big uninspected message through in pieces without assembling it", () => {
    const big = dataRow(["y".repeat(200_000)]);
    const r = recorder(false);
    const s = new FrameScanner(1 << 20);
    for (let i = 0; i < big.length; i += 65_536) s.feed(big.subarray(i, i + 65_536), r);
    expect(Buffer.concat(r.out).equals(big)).toBe(true);
    expect(r.out.every((b) => b.length <= 65_536)).toBe(true);
    expect(s.atBoundary).toBe(true);
    // its type is reported once, as it starts, and its end once
    expect(r.seen).toEqual(["streams D", "streamed"]);
  });

  it("a big message whose body arrives whole after a split header is delivered whole", () => {
    const big = dataRow(["y".repeat(200_000)]);
    const r = recorder(false);
    const s = new FrameScanner(1 << 20);
    s.feed(big.subarray(0, 3), r);
    s.feed(big.subarray(3), r);
    expect(r.seen).toEqual([`D:${big.length}`]);
    expect(Buffer.concat(r.out).equals(big)).toBe(true);
  });

  it("refuses lengths that make no sense", () => {
    const s = new FrameScanner(1000);
    const bad = Buffer.from([0x51, 0, 0, 0, 2]);
    expect(() => s.feed(bad, recorder())).toThrow(ProtocolViolation);
    const huge = Buffer.from([0x51, 0, 0, 0x10, 0]);
    expect(() => new FrameScanner(1000).feed(huge, recorder())).toThrow(/invalid message length/);
  });

  it("refuses a message type outside the allowed set on its header, before anything is emitted", () => {
    const types = new Uint8Array(256);
    types[0x51] = 1; // Q only
    const r = recorder();
    const s = new FrameScanner(1000, types);
    s.feed(query("SELECT 1"), r);
    expect(r.out).toHaveLength(1);
    // 'R' split after its type byte: refused as soon as the header is whole
    s.feed(Buffer.from([0x52, 0, 0]), r);
    expect(() => s.feed(Buffer.from([0, 8]), r)).toThrow(/unsupported message type "R"/);
    expect(r.out).toHaveLength(1);
  });
});

describe("takeStartupPacket", () => {
  it("waits for the whole packet and refuses nonsense lengths", () => {
    const pkt = Buffer.alloc(8);
    pkt.writeInt32BE(8, 0);
    pkt.writeInt32BE(80877103, 4);
    expect(takeStartupPacket(pkt.subarray(0, 5), 10000)).toBeNull();
    expect(takeStartupPacket(pkt, 10000)?.packet.length).toBe(8);
    const bad = Buffer.from([0, 0, 0, 3, 1, 2, 3, 4]);
    expect(() => takeStartupPacket(bad, 10000)).toThrow(ProtocolViolation);
    const garbage = Buffer.from("GET / HTTP/1.1\r\n\r\n");
    expect(() => takeStartupPacket(garbage, 10000)).toThrow(ProtocolViolation);
  });
});
