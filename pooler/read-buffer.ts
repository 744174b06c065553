// Reading a server socket into one reused buffer (net's documented `onread` option) instead of a
// fresh 64 kB allocation and a Readable push per read (on a bare pipe, `npm run bench:floor`, that
// saved 2.3 of 26.7 µs per transaction). It is safe because what a read brings is scanned and forwarded before the
// next read starts (framing.ts keeps copies only), except for a forwarded slice whose write is
// still queued: then the buffer is lent out and the next read gets a new one.
import type net from "node:net";

/**
 * PostgreSQL sends in 8 kB pieces; 16 kB takes two at once and keeps a pool of many servers
 * small (PgBouncer's pkt_buf is 4 kB).
 */
const SIZE = 16 * 1024;

export class ReadBuffer {
  private buf = Buffer.allocUnsafe(SIZE);
  private lent = false;
  /** Where the bytes of each read go, valid only until it returns. */
  take: (chunk: Buffer) => void = () => undefined;

  /** For net.connect(): reads land in `buf`, and net asks for the next buffer after each one. */
  readonly onread: net.OnReadOpts = {
    buffer: () => {
      if (this.lent) {
        this.buf = Buffer.allocUnsafe(SIZE);
        this.lent = false;
      }
      return this.buf;
    },
    callback: (nread: number): boolean => {
      this.take(this.buf.subarray(0, nread));
      return true;
    },
  };

  /** A slice of the current read went into a write that is still queued: it must stay as it is. */
  lend(): void {
    this.lent = true;
  }
}
