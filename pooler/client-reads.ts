// Every plain client's reads land in one buffer (stream-handle.ts, useUserBuffer) instead of a 64 kB
// allocation of their own per read, shrunk to what came: those allocations split glibc's malloc
// arenas (README, "mmap threshold"). What a read brings is scanned and forwarded before the next read
// (framing.ts keeps copies only; the client copies what it keeps: owned()), except a forwarded
// slice whose write to the server is still queued.
//
// read-buffer.ts then lends its buffer out and reads on into a new one. That cannot work here: each
// handle keeps the address it was given, and an idle client's next read, whenever it comes, lands in
// the old buffer. So while such a write is queued the read's bytes are kept aside (`lent`), and after
// each read, which the callback follows at once (libuv writes nothing in between), they are put back
// and the read is handed on as a copy.
//
// A write can stay queued for as long as its server does not read (a backend waiting on a lock held
// by a client idle in its transaction): every read of every client would be copied twice all that
// time. So a buffer lent for RETIRE_AFTER reads is retired: each handle that reads into it again
// (restored as before) is moved to a buffer that is free (no queued write needs it), one copy per
// client instead of one per read. Retired buffers are reused once free, so there are never more than
// the writes stuck at once, plus one.

/** Node's own read size (and net.Socket's highWaterMark): a COPY streams in as few reads as before. */
const SIZE = 64 * 1024;

/** Reads copied while a buffer is lent before it is retired: a write that drains takes a few. */
const RETIRE_AFTER = 256;

/** A socket a slice of a read buffer was written to. */
interface Borrower {
  readonly writableLength: number;
  readonly destroyed: boolean;
}

/** A buffer handles read into, and what a queued write still needs of it. */
class ReadRegion {
  readonly buf = Buffer.allocUnsafe(SIZE);
  /** The bytes of the read whose slices sit in queued writes, the sockets they were written to. */
  lent: { bytes: Buffer; borrowers: Borrower[]; copies: number } | null = null;

  /** No queued write needs its bytes (clearing `lent` once they are all written). */
  get free(): boolean {
    if (this.lent !== null && this.lent.borrowers.every(isDone)) this.lent = null;
    return this.lent === null;
  }
}

/** A handle reading into a region (stream-handle.ts's StreamHandle). */
export interface ReadingHandle {
  useUserBuffer(buf: Uint8Array): void;
  readsInto?: ReadRegion;
}

const regions = [new ReadRegion()];
/** Where handles read from their next read on. */
let current = regions[0]!;
/** The region and length of the read being handed on uncopied (lend's). */
let reading = current;
let readLength = 0;

/** The handle reads into the current buffer from now on. */
export function readIntoShared(handle: ReadingHandle): void {
  handle.useUserBuffer(current.buf);
  handle.readsInto = current;
}

/**
 * The `nread` bytes a handle has just read, valid until the callback returns. Called for every
 * read of every handle, ignored or not: it restores what a queued write still needs.
 */
export function takeRead(handle: ReadingHandle, nread: number): Buffer {
  const region = handle.readsInto!;
  if (region.free) {
    reading = region;
    readLength = nread;
    return region.buf.subarray(0, nread);
  }
  const lent = region.lent!;
  const copy = Buffer.from(region.buf.subarray(0, nread));
  lent.bytes.copy(region.buf, 0, 0, Math.min(nread, lent.bytes.length));
  if (region === current && ++lent.copies >= RETIRE_AFTER) {
    current = regions.find((r) => r.free) ?? new ReadRegion();
    if (!regions.includes(current)) regions.push(current);
  }
  return copy;
}

/** For the handle's `onread` to return: the buffer its next read goes to, if it is to change. */
export function nextBuffer(handle: ReadingHandle): Uint8Array | undefined {
  if (handle.readsInto === current) return undefined;
  handle.readsInto = current;
  return current.buf;
}

/** Whether a read now into the current buffer would be handed on as a copy (a queued write needs it). */
export function readsCopied(): boolean {
  return !current.free;
}

function isDone(b: Borrower): boolean {
  return b.writableLength === 0 || b.destroyed;
}

/** Whether `buf` is (a view of) a buffer clients read into. */
export function isShared(buf: Buffer): boolean {
  for (const r of regions) if (buf.buffer === r.buf.buffer) return true;
  return false;
}

/** `buf`, or a copy of it if it is a view of a read buffer: bytes kept past the read. */
export function owned(buf: Buffer): Buffer {
  return isShared(buf) ? Buffer.from(buf) : buf;
}

/** A slice of the current read was written to `to` and is still queued there: it must stay as it is. */
export function lend(to: Borrower): void {
  if (reading.lent === null) {
    reading.lent = { bytes: Buffer.from(reading.buf.subarray(0, readLength)), borrowers: [to], copies: 0 };
  } else if (!reading.lent.borrowers.includes(to)) reading.lent.borrowers.push(to);
}
