// Splitting byte streams into PostgreSQL v3 messages without copying them.
//
// The hot path never assembles a message it does not need to read: a chunk from a socket is
// scanned header by header, each message is offered to a visitor as a slice of that chunk, and the
// runs of messages the visitor lets through are written on as single slices (usually the whole
// chunk). Only a message that straddles two chunks is copied, and only when it is small or the
// visitor must read it; a big one (a huge DataRow, COPY data) streams through in pieces.
//
// A chunk may be the reader's reused buffer (server.ts reads into one): nothing of it is kept once
// `feed` returns, only copies.

export interface FrameVisitor {
  /**
   * A complete message that passes on unchanged: `chunk[start, end)` holds type byte, length and
   * body (offsets, not a view: most messages are never read, and a view each is garbage each).
   */
  message(type: number, chunk: Buffer, start: number, end: number): void;
  /**
   * Whether messages of this type may be swallowed or replaced. Such messages are always seen
   * whole and go to `rewrite` instead of `message`.
   */
  mayRewrite(type: number): boolean;
  /** Passes on whatever should stand in the stream for `msg` (msg itself, something else, nothing). */
  rewrite(type: number, msg: Buffer): void;
  /**
   * Set by `rewrite` when it kept `msg` to be scanned again later: the scan stops right after it,
   * at a boundary, and `feed` says where, so that the visitor keeps the rest of the chunk too.
   */
  readonly stopped?: boolean;
  /** Takes the next slice of the stream to pass on, in order. */
  pass(slice: Buffer): void;
  /** Whether a message of this type must be read whole; other big messages may stream through. */
  mustInspect(type: number): boolean;
  /** A message too big to assemble is starting to stream through: only its type is known. */
  streams(type: number): void;
  /**
   * The next slice of a streaming message's body, to pass on (the first one went with `streams` or
   * `rewritesPrefix`); `last` when it ends the message.
   */
  streamBody(slice: Buffer, last: boolean): void;
  /**
   * A message too big to assemble, of a type that may be rewritten: true when its first bytes
   * (`prefix`: header and what has arrived of the body) were enough and what stands for them has
   * been passed on, the length in its header adjusted; the rest of the body then streams through.
   */
  rewritesPrefix(type: number, prefix: Buffer): boolean;
}

export class ProtocolViolation extends Error {}

/** Largest straddling message we assemble before forwarding, for types no one inspects. */
const STREAM_THRESHOLD = 64 * 1024;
/** Largest message: PostgreSQL's own MaxAllocSize (1 GB) bounds real ones. */
const MAX_MESSAGE = 0x3fffffff;

export class FrameScanner {
  /** Bytes of a header (type + int32) split across chunks; allocated when first needed. */
  private head: Buffer | null = null;
  private headLen = 0;
  /**
   * A straddling message being assembled, as the pieces received so far (header first). Held as
   * slices, not a buffer of the announced size, so a length that is a lie reserves no memory.
   */
  private partial: Buffer[] | null = null;
  private partialLen = 0;
  private partialTotal = 0;
  /** Body bytes of a streamed message still to pass through as they arrive. */
  private streaming = 0;

  /**
   * `types`, when given, is the set of message types this peer may send (1 = allowed): any other
   * is refused on its header, before it is forwarded to a peer that would only die of it, with
   * `refusal`'s words.
   */
  constructor(
    /** Read at each header: a server's scanner takes a new max_packet_size from SET or RELOAD. */
    public maxPacketSize: number,
    readonly types?: Uint8Array,
    private readonly refusal: (type: number) => string = unsupportedType,
  ) {}

  /** True when no message is half-read: the stream is at a message boundary. */
  get atBoundary(): boolean {
    return this.headLen === 0 && this.partial === null && this.streaming === 0;
  }

  /** Bytes of a half-received message held here (SHOW SOCKETS' recv_pos). */
  get held(): number {
    return this.headLen + (this.partial === null ? 0 : this.partialLen);
  }

  /** Bytes of the current message still to come, assembled or streamed (SHOW SOCKETS' pkt_remain). */
  get missing(): number {
    return this.streaming + (this.partial === null ? 0 : this.partialTotal - this.partialLen);
  }

  /**
   * Scans `chunk`, calling `visitor.message` for each complete message and `visitor.pass` with the
   * slices to forward, in order. Throws ProtocolViolation on a nonsensical length. Returns where in
   * `chunk` it stopped: its length, unless the visitor `stopped`.
   */
  feed(chunk: Buffer, visitor: FrameVisitor): number {
    let pos = 0;
    const end = chunk.length;

    if (this.streaming > 0) {
      const n = Math.min(this.streaming, end);
      this.streaming -= n;
      visitor.streamBody(n === end ? chunk : chunk.subarray(0, n), this.streaming === 0);
      pos = n;
    }
    if (this.partial !== null) {
      const n = Math.min(this.partialTotal - this.partialLen, end - pos);
      this.partial.push(Buffer.from(chunk.subarray(pos, pos + n)));
      this.partialLen += n;
      pos += n;
      if (this.partialLen < this.partialTotal) return end;
      const msg = Buffer.concat(this.partial, this.partialTotal);
      this.partial = null;
      this.deliver(msg, visitor);
      if (visitor.stopped === true) return pos;
    }
    if (this.headLen > 0) {
      const head = this.head!;
      const n = Math.min(5 - this.headLen, end - pos);
      chunk.copy(head, this.headLen, pos, pos + n);
      this.headLen += n;
      pos += n;
      if (this.headLen < 5) return end;
      this.headLen = 0;
      pos = this.startStraddling(head, chunk, pos, visitor);
      if (visitor.stopped === true) return pos;
    }

    // Complete messages inside this chunk: forwarded as one slice per run.
    let runStart = pos;
    while (end - pos >= 5) {
      const type = chunk[pos]!;
      const len = chunk.readUInt32BE(pos + 1);
      this.checkLength(type, len);
      const msgEnd = pos + 1 + len;
      if (msgEnd > end) break;
      if (visitor.mayRewrite(type)) {
        if (pos > runStart) visitor.pass(chunk.subarray(runStart, pos));
        visitor.rewrite(type, chunk.subarray(pos, msgEnd));
        if (visitor.stopped === true) return msgEnd;
        runStart = msgEnd;
      } else {
        visitor.message(type, chunk, pos, msgEnd);
      }
      pos = msgEnd;
    }
    if (pos > runStart) visitor.pass(runStart === 0 && pos === end ? chunk : chunk.subarray(runStart, pos));
    if (pos === end) return end;

    if (end - pos < 5) {
      this.head ??= Buffer.allocUnsafe(5);
      chunk.copy(this.head, 0, pos, end);
      this.headLen = end - pos;
      return end;
    }
    this.startStraddling(chunk.subarray(pos, pos + 5), chunk, pos + 5, visitor);
    return end;
  }

  /**
   * A message whose header is known but whose body runs past the chunk: either assemble it or,
   * when it is big and nobody needs to read it, stream it. Returns the position after what was used.
   */
  private startStraddling(header: Buffer, chunk: Buffer, bodyPos: number, visitor: FrameVisitor): number {
    const type = header[0]!;
    const len = header.readUInt32BE(1);
    this.checkLength(type, len);
    const available = Math.min(chunk.length - bodyPos, len - 4);
    const body = chunk.subarray(bodyPos, bodyPos + available);
    // PostgreSQL refuses these itself (PQ_LARGE_MESSAGE_LIMIT), streamed or not
    if (len + 1 > MAX_MESSAGE) {
      throw new ProtocolViolation(
        `message of ${len + 1} bytes is too large (type "${String.fromCharCode(type)}")`,
      );
    }
    const whole = available === len - 4; // after a split header, the body may all be here
    if (
      len + 1 > STREAM_THRESHOLD &&
      !whole &&
      !visitor.mustInspect(type) &&
      this.startStream(header, body, visitor)
    ) {
      this.streaming = len - 4 - available;
      return bodyPos + available;
    }
    const head = Buffer.from(header); // header may be our reusable `head`: copy it
    if (whole) {
      this.deliver(Buffer.concat([head, body], len + 1), visitor);
    } else {
      this.partial = [head, Buffer.from(body)];
      this.partialLen = 5 + available;
      this.partialTotal = len + 1;
    }
    return bodyPos + available;
  }

  /**
   * A big message nobody reads whole starts through: as it is or, for a type that may be rewritten,
   * after the visitor routed it on its first bytes. False when it must be assembled after all.
   */
  private startStream(header: Buffer, body: Buffer, visitor: FrameVisitor): boolean {
    const type = header[0]!;
    // the prefix is a copy (the visitor may keep it), as is the header: it may be our reusable `head`
    if (visitor.mayRewrite(type)) return visitor.rewritesPrefix(type, Buffer.concat([header, body]));
    visitor.streams(type);
    visitor.pass(Buffer.from(header));
    if (body.length > 0) visitor.pass(body);
    return true;
  }

  private deliver(msg: Buffer, visitor: FrameVisitor): void {
    const type = msg[0]!;
    if (visitor.mayRewrite(type)) {
      visitor.rewrite(type, msg);
    } else {
      visitor.message(type, msg, 0, msg.length);
      visitor.pass(msg);
    }
  }

  private checkLength(type: number, len: number): void {
    if (this.types !== undefined && this.types[type] !== 1) throw new ProtocolViolation(this.refusal(type));
    // "don't believe nonsense" (PgBouncer proto.c): a length covers at least itself
    if (len < 4 || len > this.maxPacketSize) {
      throw new ProtocolViolation(
        `invalid message length ${len} for message type "${String.fromCharCode(type)}"`,
      );
    }
  }
}

/**
 * Startup-phase packets have no type byte: int32 length (including itself) + payload. Returns the
 * packet and the rest, or null when more bytes are needed.
 */
export function takeStartupPacket(buf: Buffer, maxLen: number): { packet: Buffer; rest: Buffer } | null {
  if (buf.length < 4) return null;
  const len = buf.readUInt32BE(0);
  // 8 = the shortest legal packet (SSLRequest); 10000 is PostgreSQL's own MAX_STARTUP_PACKET_LENGTH.
  if (len < 8 || len > Math.min(maxLen, 10000)) {
    throw new ProtocolViolation(`invalid startup packet length ${len}`);
  }
  if (buf.length < len) return null;
  return { packet: buf.subarray(0, len), rest: buf.subarray(len) };
}

export function unsupportedType(type: number): string {
  return `unsupported message type "${String.fromCharCode(type)}" (0x${type.toString(16)})`;
}
