// SASLprep (RFC 4013) of a SCRAM password, the way PostgreSQL's pg_saslprep() applies it — both
// the server (when it hashes `PASSWORD '...'` into a SCRAM secret) and libpq (when it answers a
// SCRAM challenge). What matters for interoperability is not RFC conformance but producing the
// same bytes as PostgreSQL, including its fallback: when SASLprep fails, PostgreSQL silently uses
// the password unchanged instead of rejecting it.
//
// Implemented exactly as PostgreSQL does:
// - pure ASCII passwords are used as they are (control characters included);
// - mapping: non-ASCII spaces (RFC 3454 C.1.2) become U+0020, "commonly mapped to nothing"
//   characters (B.1) are removed; an empty result falls back to the raw password;
// - NFKC normalisation, here String.prototype.normalize("NFKC");
// - prohibited output (C.1.2, C.2–C.9) falls back to the raw password. Like PostgreSQL, this check
//   looks at the mapped string *before* normalisation.
// Approximated, by choice (the full tables are several hundred ranges for cases that practically
// never occur in passwords):
// - unassigned code points (A.1, relative to Unicode 3.2): we only catch code points unassigned in
//   the Unicode version of Node's ICU (\p{Cn}), a subset of A.1. Characters assigned after 3.2
//   (e.g. emoji) make PostgreSQL fall back to the raw password and not us;
// - the bidirectional rule (RandALCat/LCat) is not checked: a password mixing right-to-left and
//   left-to-right letters is normalised by us and left raw by PostgreSQL.
// Both gaps only change the result when NFKC or the mapping actually alters such a password; for
// an already-normalised password both branches yield the same bytes. NFKC tables themselves can
// differ between PostgreSQL's and ICU's Unicode versions only for newly encoded characters.

type Range = readonly [number, number];

// RFC 3454 C.1.2, as in PostgreSQL's non_ascii_space_ranges.
const NON_ASCII_SPACE: readonly Range[] = [
  [0x00a0, 0x00a0],
  [0x1680, 0x1680],
  [0x2000, 0x200b],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
];

// RFC 3454 B.1.
const MAPPED_TO_NOTHING: readonly Range[] = [
  [0x00ad, 0x00ad],
  [0x034f, 0x034f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200b, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];

// Union of RFC 3454 C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8 and C.9, merged as in
// PostgreSQL's prohibited_output_ranges.
const PROHIBITED: readonly Range[] = [
  [0x0000, 0x001f],
  [0x007f, 0x00a0],
  [0x0340, 0x0341],
  [0x06dd, 0x06dd],
  [0x070f, 0x070f],
  [0x1680, 0x1680],
  [0x180e, 0x180e],
  [0x2000, 0x200f],
  [0x2028, 0x202f],
  [0x205f, 0x2063],
  [0x206a, 0x206f],
  [0x2ff0, 0x2ffb],
  [0x3000, 0x3000],
  [0xd800, 0xf8ff],
  [0xfdd0, 0xfdef],
  [0xfeff, 0xfeff],
  [0xfff9, 0xffff],
  [0x1d173, 0x1d17a],
  [0xe0001, 0xe0001],
  [0xe0020, 0xe007f],
  [0xf0000, 0x10ffff],
];

// C.4 also lists the last two code points of every plane (U+xFFFE, U+xFFFF).
function isPlaneNonCharacter(cp: number): boolean {
  return (cp & 0xfffe) === 0xfffe;
}

function inRanges(cp: number, ranges: readonly Range[]): boolean {
  return ranges.some(([lo, hi]) => cp >= lo && cp <= hi);
}

const UNASSIGNED = /^\p{Cn}$/u;
const ASCII = /^\p{ASCII}*$/u;

/** The password PostgreSQL would hash for SCRAM: its SASLprep form, or itself if that fails. */
export function saslprep(password: string): string {
  if (ASCII.test(password)) return password;

  let mapped = "";
  for (const ch of password) {
    const cp = ch.codePointAt(0)!;
    if (inRanges(cp, NON_ASCII_SPACE)) mapped += " ";
    else if (!inRanges(cp, MAPPED_TO_NOTHING)) mapped += ch;
  }
  if (mapped === "") return password;

  for (const ch of mapped) {
    const cp = ch.codePointAt(0)!;
    if (inRanges(cp, PROHIBITED) || isPlaneNonCharacter(cp) || UNASSIGNED.test(ch)) return password;
  }
  return mapped.normalize("NFKC");
}
