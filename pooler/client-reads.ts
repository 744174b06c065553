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

/** Node's own read size (and net.Socket's highWaterMark): a COPY streams in as few reads as before. */
const SIZE = 64 * 1024;

const shared = Buffer.allocUnsafe(SIZE);

/** A socket a slice of the shared buffer was written to. */
interface Borrower {
  readonly writableLength: number;
  readonly destroyed: boolean;
}

/** The bytes of the read whose slices sit in queued writes, and the sockets they were written to. */
let lent: { bytes: Buffer; borrowers: Borrower[] } | null = null;
/** The length of the read being handed on. */
let current = 0;

/** The handle reads into the shared buffer from now on. */
export function readIntoShared(handle: { useUserBuffer(buf: Uint8Array): void }): void {
  handle.useUserBuffer(shared);
}

/**
 * The `nread` bytes a handle has just read, valid until the callback returns. Called for every
 * read of every handle, ignored or not: it restores what a queued write still needs.
 */
export function takeRead(nread: number): Buffer {
  if (lent !== null && lent.borrowers.every(isDone)) lent = null;
  if (lent === null) {
    current = nread;
    return shared.subarray(0, nread);
  }
  const copy = Buffer.from(shared.subarray(0, nread));
  lent.bytes.copy(shared, 0, 0, Math.min(nread, lent.bytes.length));
  return copy;
}

function isDone(b: Borrower): boolean {
  return b.writableLength === 0 || b.destroyed;
}

/** Whether `buf` is (a view of) the shared buffer. */
export function isShared(buf: Buffer): boolean {
  return buf.buffer === shared.buffer;
}

/** `buf`, or a copy of it if it is a view of the shared buffer: bytes kept past the read. */
export function owned(buf: Buffer): Buffer {
  return isShared(buf) ? Buffer.from(buf) : buf;
}

/** A slice of the current read was written to `to` and is still queued there: it must stay as it is. */
export function lend(to: Borrower): void {
  if (lent === null) lent = { bytes: Buffer.from(shared.subarray(0, current)), borrowers: [to] };
  else if (!lent.borrowers.includes(to)) lent.borrowers.push(to);
}
