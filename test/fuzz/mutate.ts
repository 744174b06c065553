// Mutations of well-formed protocol bytes: wrong lengths, truncation, flipped and inserted bytes.
import type { Rng } from "./rng.ts";

/** Lengths a header may lie with: too short, negative as int32, past every limit, off by a little. */
export function lyingLength(rng: Rng, honest: number): number {
  switch (rng.int(7)) {
    case 0:
      return rng.int(4); // shorter than the length field itself
    case 1:
      return (0x80000000 + rng.int(0x7fffffff)) >>> 0; // negative as int32
    case 2:
      return rng.pick([10_001, 65_536, 1 << 20, 0x3fffffff, 0x7fffffff]);
    case 3:
      return Math.max(0, honest - rng.range(1, 8));
    case 4:
      return honest + rng.range(1, 8); // the pooler waits for bytes that never come
    case 5:
      return rng.int(0x1_0000_0000);
    default:
      return honest;
  }
}

/** A copy of `buf` damaged in one of a few ways. */
export function mutateBytes(rng: Rng, buf: Buffer): Buffer {
  const out = Buffer.from(buf);
  switch (rng.int(5)) {
    case 0: // flip some bytes
      for (let i = rng.range(1, 4); i > 0 && out.length > 0; i--) out[rng.int(out.length)] = rng.int(256);
      return out;
    case 1: // truncate
      return out.subarray(0, rng.int(out.length + 1));
    case 2: // insert garbage
      return insertAt(out, rng.int(out.length + 1), rng.bytes(rng.range(1, 16)));
    case 3: // drop the NULs
      return Buffer.from(out.filter((b) => b !== 0));
    default: // append garbage
      return Buffer.concat([out, rng.bytes(rng.range(1, 32))]);
  }
}

function insertAt(buf: Buffer, at: number, extra: Buffer): Buffer {
  return Buffer.concat([buf.subarray(0, at), extra, buf.subarray(at)]);
}

/** A typed message whose length field says `len` (honest unless told otherwise). */
export function typed(type: number, body: Buffer, len = body.length + 4): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeUInt32BE(len >>> 0, 1);
  body.copy(out, 5);
  return out;
}

/** An untyped startup-phase packet whose length field says `len`. */
export function untyped(body: Buffer, len = body.length + 4): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(len >>> 0, 0);
  body.copy(out, 4);
  return out;
}

/** Random text, sometimes valid UTF-8, sometimes not, sometimes with NULs. */
export function oddText(rng: Rng, max = 40): Buffer {
  const n = rng.int(max + 1);
  switch (rng.int(4)) {
    case 0:
      return Buffer.from("é😀\u0301ß".repeat(Math.ceil(n / 4)).slice(0, n), "utf8");
    case 1:
      return rng.bytes(n);
    case 2:
      return Buffer.from("x".repeat(rng.pick([n, 63, 64, 65, 5000])), "latin1");
    default:
      return Buffer.from(rng.bytes(n).toString("base64").slice(0, n), "latin1");
  }
}
