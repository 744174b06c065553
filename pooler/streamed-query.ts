// A simple Query too big to assemble, classified as it streams through (transaction and statement
// pooling). session-state.ts classifies SQL held whole; a Query of hundreds of megabytes (a bulk
// INSERT … VALUES from an ORM) would cost several times its size to hold, decode and tokenize, and
// stall every other client meanwhile. Here the bytes pass on as they arrive, and a lexer keeps
// only what the classifier reads:
//
// - each statement's first STATEMENT_HEAD bytes, batched with its neighbours and classified as
//   classify would classify them;
// - a statement longer than that counts as having touched the session (the probe then asks
//   PostgreSQL what it holds, which is exact for settings and held state), and its remainder is only
//   lexed, to find where it ends;
// - after every `set_config` or `"set_config"` outside literals, WINDOW bytes: the one thing the
//   probe cannot find on its own is the name of a custom placeholder set deep inside a long
//   statement (a U&'…' there, which may spell one, pins the client: session-state.ts).
//
// The lexer works on bytes: every byte that matters to it is ASCII, and UTF-8 never uses ASCII
// bytes inside a multi-byte character. It follows the same rules as session-state.ts's tokenizer,
// so both split statements alike, and as classify does it reads the text both with and without
// standard_conforming_strings.
import { Classification, classify, type SessionEffect } from "./session-state.ts";

/** Bytes of each statement the classifier reads. */
export const STATEMENT_HEAD = 64 * 1024;
/** Whole statements are classified in batches of about this many bytes. */
const BATCH = 256 * 1024;
/** Bytes read after a `set_config` in a statement's unread part: its first argument is the setting's name. */
const WINDOW = 256;

const enum Lex {
  Normal,
  /** After `-`: a comment if another follows. */
  Dash,
  /** After `/`: a comment if `*` follows. */
  Slash,
  LineComment,
  BlockComment,
  /** In a block comment after `*`: `/` closes one level. */
  BlockStar,
  /** In a block comment after `/`: `*` opens one more (they nest). */
  BlockSlash,
  /** '…'; with backslash escapes when standard_conforming_strings is off. */
  Literal,
  /** After a quote inside '…': another quote is an escaped one (and E'…' goes on taking backslashes). */
  LiteralQuote,
  /** After a backslash inside E'…' (or '…' without standard_conforming_strings). */
  LiteralEscape,
  /** "…": a doubled quote inside ends one and opens the next, which splits statements alike. */
  Ident,
  /** After a `$` that may open $tag$. */
  DollarTag,
  /** Inside $tag$…$tag$. */
  Dollar,
}

// byte classes of the Normal state
const WORD = 1; // starts or continues a word: letters, `_`, non-ASCII
const DIGIT = 2; // continues a word
const DOLLAR = 3; // continues a word, or may open a dollar quote
const CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c >= 0x80) CLASS[c] = WORD;
  else if (c >= 0x30 && c <= 0x39) CLASS[c] = DIGIT;
}
CLASS[0x24] = DOLLAR;

const SEMICOLON = 0x3b;
const QUOTE = 0x27;
const DOUBLE_QUOTE = 0x22;
const BACKSLASH = 0x5c;
const DASH = 0x2d;
const SLASH = 0x2f;
const STAR = 0x2a;
const NEWLINE = 0x0a;
const RETURN = 0x0d;
const DOLLAR_SIGN = 0x24;
const AMPERSAND = 0x26;

/** The word after which WINDOW bytes are read, lowercase; or the "identifier". */
const SET_CONFIG = Buffer.from("set_config");
const QUOTED_SET_CONFIG = Buffer.from('"set_config"');
/** PostgreSQL truncates identifiers at 63 bytes; a longer $tag$ is not one. */
const MAX_TAG = 63;

/**
 * The streamed text read both ways, as classify reads a text with a backslash: the session's
 * standard_conforming_strings may change in the same packet, so each reading's statements are
 * classified, together. The two readings differ only from the first backslash on: until one comes,
 * one lexer reads for both, and the second starts there as a copy of the first.
 */
export class StreamedQuery {
  private readonly classification = new Classification();
  private readonly standard: Lexer;
  private backslashQuote: Lexer | null = null;

  /** `head`: bytes of each statement read (smaller in tests, to put the lexer to work). */
  constructor(head = STATEMENT_HEAD) {
    this.standard = new Lexer(this.classification, false, head);
  }

  /** The next bytes of the SQL text: `chunk[from…]`. */
  feed(chunk: Buffer, from = 0): void {
    if (this.backslashQuote === null && chunk.indexOf(BACKSLASH, from) !== -1)
      this.backslashQuote = this.standard.fork(true);
    this.standard.feed(chunk, from);
    this.backslashQuote?.feed(chunk, from);
  }

  /** Bytes of text held for the classifier: at most about 2 × (BATCH + STATEMENT_HEAD), whatever streams through. */
  get keptBytes(): number {
    return this.standard.keptBytes + (this.backslashQuote?.keptBytes ?? 0);
  }

  /** After the last byte: what the whole text may have done to the session. */
  result(): SessionEffect {
    this.standard.finish();
    this.backslashQuote?.finish();
    return this.classification.result();
  }
}

/** One reading of the text: where its statements end, what of them the classifier gets. */
class Lexer {
  private state = Lex.Normal;
  /** Literal: whether a backslash escapes (E'…', or any '…' without standard_conforming_strings). */
  private escapes = false;
  private commentDepth = 0;
  /** Length of the word being read in Normal; 0 when none. */
  private wordLen = 0;
  /** The word's first byte: a lone E or e before a quote opens E'…'. */
  private wordFirst = 0;
  /** Bytes of SET_CONFIG the word has matched so far; -1 once it cannot be that word. */
  private matched = -1;
  /** After a lone U or u and `&`: a quote now opens U&'…' or U&"…". */
  private unicodeEscapes = false;
  /** Where the "identifier" being read started, as an offset in the text. */
  private identStart = 0;
  /** The next backslash in the chunk being read, at or after the literal's position (-1: none, -2: not looked for). */
  private nextBackslash = -2;
  /** $tag$ being read (DollarTag), then the closing tag looked for (Dollar). */
  private tag: number[] = [];
  /** Bytes of the closing tag matched so far (Dollar). */
  private tagMatched = 0;

  /** Offset of the next byte fed, counted in the SQL text. */
  private offset = 0;
  /** Where the current statement started. */
  private statementStart = 0;
  /** Up to where the current statement's head has been kept. */
  private keptTo = 0;
  /** Past its head: the statement's remainder is only lexed. */
  private skipping = false;
  /** The batch of statement text kept for the classifier. */
  private batch: Buffer[] = [];
  private batchBytes = 0;
  /** Bytes after a `set_config`, still being collected when `windowLeft` > 0. */
  private window: Buffer[] = [];
  private windowLeft = 0;

  /** `backslashQuote`: read '…' as with standard_conforming_strings off, where backslashes escape. */
  constructor(
    private readonly classification: Classification,
    private readonly backslashQuote: boolean,
    private readonly head: number,
  ) {}

  /** A lexer that has read the same text (without a backslash so far), to go on reading '…' as `backslashQuote` says. */
  fork(backslashQuote: boolean): Lexer {
    const f = new Lexer(this.classification, backslashQuote, this.head);
    f.state = this.state;
    // a literal open now would have been opened taking backslash escapes
    f.escapes = this.escapes || backslashQuote;
    f.commentDepth = this.commentDepth;
    f.wordLen = this.wordLen;
    f.wordFirst = this.wordFirst;
    f.matched = this.matched;
    f.unicodeEscapes = this.unicodeEscapes;
    f.identStart = this.identStart;
    f.tag = [...this.tag];
    f.tagMatched = this.tagMatched;
    f.offset = this.offset;
    f.statementStart = this.statementStart;
    f.keptTo = this.keptTo;
    f.skipping = this.skipping;
    f.batch = [...this.batch];
    f.batchBytes = this.batchBytes;
    f.window = [...this.window];
    f.windowLeft = this.windowLeft;
    return f;
  }

  feed(chunk: Buffer, from: number): void {
    const base = this.offset - from;
    let i = from;
    this.nextBackslash = -2;
    if (this.windowLeft > 0) this.takeWindow(chunk, i);
    const n = chunk.length;
    while (i < n) {
      const c = chunk[i]!;
      switch (this.state) {
        case Lex.Normal: {
          const kind = CLASS[c]!;
          if (kind === WORD || (this.wordLen > 0 && kind !== 0)) {
            this.wordByte(c);
            i++;
            continue;
          }
          const lone = this.wordLen === 1 ? this.wordFirst | 0x20 : 0;
          const unicode = this.unicodeEscapes;
          this.unicodeEscapes = false;
          if (this.wordLen > 0) this.endWord(chunk, i);
          i++;
          // in the unread part of a statement, a U&'…' or U&"…" may spell a setting's name
          if ((c === QUOTE || c === DOUBLE_QUOTE) && unicode && this.skipping) this.classification.unnamed();
          if (c === QUOTE) this.openLiteral(lone === 0x65 || this.backslashQuote);
          else if (c === DOUBLE_QUOTE) {
            this.identStart = base + i;
            this.state = Lex.Ident;
          } else if (c === AMPERSAND) this.unicodeEscapes = lone === 0x75;
          else if (c === DASH) this.state = Lex.Dash;
          else if (c === SLASH) this.state = Lex.Slash;
          else if (c === DOLLAR_SIGN) {
            this.tag = [DOLLAR_SIGN];
            this.state = Lex.DollarTag;
          } else if (c === SEMICOLON) this.endStatement(chunk, base, base + i);
          continue;
        }
        case Lex.Dash:
        case Lex.Slash:
          // not a comment after all: the byte is read again as Normal
          if (c === (this.state === Lex.Dash ? DASH : STAR)) {
            this.state = c === DASH ? Lex.LineComment : Lex.BlockComment;
            this.commentDepth = 1;
            i++;
          } else this.state = Lex.Normal;
          continue;
        case Lex.LineComment:
          // PostgreSQL ends a -- comment at a carriage return too
          if (c === NEWLINE || c === RETURN) this.state = Lex.Normal;
          i++;
          continue;
        case Lex.BlockComment:
          if (c === STAR) this.state = Lex.BlockStar;
          else if (c === SLASH) this.state = Lex.BlockSlash;
          i++;
          continue;
        case Lex.BlockStar:
          if (c === SLASH) this.state = --this.commentDepth === 0 ? Lex.Normal : Lex.BlockComment;
          else if (c !== STAR) this.state = Lex.BlockComment;
          i++;
          continue;
        case Lex.BlockSlash:
          if (c === STAR) {
            this.commentDepth++;
            this.state = Lex.BlockComment;
          } else if (c !== SLASH) this.state = Lex.BlockComment;
          i++;
          continue;
        case Lex.Literal:
          if (!this.escapes) {
            const q = chunk.indexOf(QUOTE, i);
            if (q < 0) i = n;
            else {
              i = q + 1;
              this.state = Lex.LiteralQuote;
            }
            continue;
          }
          i = this.escapedLiteral(chunk, i);
          continue;
        case Lex.LiteralEscape:
          this.state = Lex.Literal;
          i++;
          continue;
        case Lex.LiteralQuote:
          // a doubled quote stays inside; anything else is read again as Normal
          if (c === QUOTE) {
            this.state = Lex.Literal;
            i++;
          } else this.state = Lex.Normal;
          continue;
        case Lex.Ident: {
          const q = chunk.indexOf(DOUBLE_QUOTE, i);
          if (q < 0) i = n;
          else {
            i = q + 1;
            this.state = Lex.Normal;
            this.endIdent(chunk, base, q);
          }
          continue;
        }
        case Lex.DollarTag:
          i = this.readTag(c, i);
          continue;
        case Lex.Dollar:
          i = this.findClosingTag(chunk, i);
          continue;
      }
    }
    this.offset = base + n;
    this.keepHead(chunk, base);
  }

  /** Bytes of text held for the classifier: at most about BATCH + STATEMENT_HEAD. */
  get keptBytes(): number {
    return this.batchBytes + WINDOW - this.windowLeft;
  }

  finish(): void {
    if (this.windowLeft > 0) this.classifyWindow();
    this.classifyBatch();
  }

  /** Inside '…' that takes backslash escapes: on to the next backslash or quote, each found once per chunk. */
  private escapedLiteral(chunk: Buffer, i: number): number {
    if (this.nextBackslash === -2 || (this.nextBackslash !== -1 && this.nextBackslash < i))
      this.nextBackslash = chunk.indexOf(BACKSLASH, i);
    const q = chunk.indexOf(QUOTE, i);
    const b = this.nextBackslash;
    if (b !== -1 && (q === -1 || b < q)) {
      this.state = Lex.LiteralEscape;
      return b + 1;
    }
    if (q === -1) return chunk.length;
    this.state = Lex.LiteralQuote;
    return q + 1;
  }

  /**
   * A "identifier" ends at `chunk[q]`: if it is "set_config", in the unread part of a statement, it
   * is a call whose name the classifier needs (one cut across chunks counts, unread).
   */
  private endIdent(chunk: Buffer, base: number, q: number): void {
    const start = this.identStart - base;
    if (base + q - this.identStart !== SET_CONFIG.length) return;
    if (start >= 0 && !chunk.subarray(start, q).equals(SET_CONFIG)) return;
    this.startWindow(QUOTED_SET_CONFIG, chunk, q + 1);
  }

  private openLiteral(escapes: boolean): void {
    this.escapes = escapes;
    this.state = Lex.Literal;
  }

  private wordByte(c: number): void {
    const m = this.matched;
    if (this.wordLen++ === 0) {
      this.wordFirst = c;
      this.matched = (c | 0x20) === SET_CONFIG[0] ? 1 : -1;
    } else if (m >= 0) {
      this.matched = m < SET_CONFIG.length && (c === 0x5f ? c : c | 0x20) === SET_CONFIG[m] ? m + 1 : -1;
    }
  }

  /** A word ends at `chunk[i]`: after `set_config`, the next WINDOW bytes are kept for the classifier. */
  private endWord(chunk: Buffer, i: number): void {
    const hit = this.matched === SET_CONFIG.length;
    this.wordLen = 0;
    this.matched = -1;
    if (hit) this.startWindow(SET_CONFIG, chunk, i);
  }

  private startWindow(name: Buffer, chunk: Buffer, from: number): void {
    if (this.windowLeft > 0) this.classifyWindow();
    this.window = [name];
    this.windowLeft = WINDOW;
    this.takeWindow(chunk, from);
  }

  private takeWindow(chunk: Buffer, from: number): void {
    const end = Math.min(chunk.length, from + this.windowLeft);
    this.window.push(Buffer.from(chunk.subarray(from, end)));
    this.windowLeft -= end - from;
    if (this.windowLeft === 0) this.classifyWindow();
  }

  private classifyWindow(): void {
    this.classification.add(Buffer.concat(this.window).toString("utf8"), this.backslashQuote);
    this.window = [];
    this.windowLeft = 0;
  }

  /** A byte after `$…`: more of the tag, its closing `$`, or proof that it was no tag ($1, a$b). */
  private readTag(c: number, i: number): number {
    const kind = CLASS[c]!;
    if (c === DOLLAR_SIGN) {
      this.tag.push(c);
      this.tagMatched = 0;
      this.state = Lex.Dollar;
      return i + 1;
    }
    if ((kind === WORD || (kind === DIGIT && this.tag.length > 1)) && this.tag.length <= MAX_TAG) {
      this.tag.push(c);
      return i + 1;
    }
    this.state = Lex.Normal;
    return i;
  }

  private findClosingTag(chunk: Buffer, i: number): number {
    const tag = this.tag;
    if (this.tagMatched === 0) {
      const d = chunk.indexOf(DOLLAR_SIGN, i);
      if (d < 0) return chunk.length;
      this.tagMatched = 1;
      return d + 1;
    }
    const c = chunk[i]!;
    if (c === tag[this.tagMatched]) {
      if (++this.tagMatched === tag.length) this.state = Lex.Normal;
    } else this.tagMatched = c === DOLLAR_SIGN ? 1 : 0;
    return i + 1;
  }

  /** A `;` ends a statement at `end` (the offset after it). */
  private endStatement(chunk: Buffer, base: number, end: number): void {
    if (!this.skipping && !this.cutHead(chunk, base, end)) {
      this.keep(chunk, base, this.keptTo, end);
      if (this.batchBytes >= BATCH) this.classifyBatch();
    }
    this.skipping = false;
    this.statementStart = end;
    this.keptTo = end;
  }

  /** At the end of a chunk: what is left of the current statement's head is kept. */
  private keepHead(chunk: Buffer, base: number): void {
    if (this.skipping || this.cutHead(chunk, base, this.offset)) return;
    this.keep(chunk, base, this.keptTo, this.offset);
    this.keptTo = this.offset;
  }

  /**
   * When the current statement, read up to `to`, is longer than its head: the head goes to the
   * classifier now (with the batch before it, and last: a cut literal swallows nothing after it),
   * and the rest of the statement is skipped.
   */
  private cutHead(chunk: Buffer, base: number, to: number): boolean {
    const headEnd = this.statementStart + this.head;
    if (to <= headEnd) return false;
    this.keep(chunk, base, this.keptTo, headEnd);
    this.classifyBatch();
    this.classification.unread();
    this.skipping = true;
    return true;
  }

  /** Keeps the text from `from` to `to` that lies in `chunk` (whose first byte is at `base`). */
  private keep(chunk: Buffer, base: number, from: number, to: number): void {
    const start = Math.max(from - base, 0);
    const end = Math.min(to - base, chunk.length);
    if (end <= start) return;
    this.batch.push(Buffer.from(chunk.subarray(start, end)));
    this.batchBytes += end - start;
  }

  private classifyBatch(): void {
    if (this.batchBytes === 0) return;
    this.classification.add(Buffer.concat(this.batch, this.batchBytes).toString("utf8"), this.backslashQuote);
    this.batch = [];
    this.batchBytes = 0;
  }
}

/**
 * The session effect of SQL held whole as bytes (a Parse, read whole in transaction pooling). Text
 * longer than a statement's head goes through the streaming lexer: tokenizing megabytes of SQL at
 * once would cost many times their size in tokens and stall every client.
 */
export function classifySql(bytes: Buffer, start: number, end: number): SessionEffect {
  if (end - start <= STATEMENT_HEAD) return classify(bytes.toString("utf8", start, end));
  const sql = new StreamedQuery();
  sql.feed(bytes.subarray(start, end));
  return sql.result();
}
