// A small seeded PRNG (sfc32) for the protocol fuzzer: the same seed gives the same cases in the
// same order, so a failure found by a long random run replays from its seed and case number.

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }

  /** A uint32. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.next() / 0x1_0000_0000) * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** A derived generator, so that each case's randomness does not depend on the others'. */
  fork(): Rng {
    return new Rng(this.next());
  }
}

/** FUZZ_SEED: a number, "random", or unset (the fixed CI seed). */
export function seedFrom(value: string | undefined, fixed: number): number {
  if (value === undefined || value === "") return fixed;
  if (value === "random") return Math.floor(Math.random() * 0x1_0000_0000);
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new Error(`FUZZ_SEED must be an integer from 0 to 4294967295 or "random", not "${value}"`);
  }
  return n;
}

/** A whole number from the environment (FUZZ_SECONDS, FUZZ_CASE), or `fallback` when unset. */
export function envNumber(name: string, fallback: number): number {
  const text = process.env[name];
  if (!text) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, not "${text}"`);
  return n;
}
