// Python's int() on text, as Django reads page numbers (ChangeList's p=, ListView's page=): space
// around it, a sign, underscores between digits and any script's decimal digits are all accepted
// (int(" +1_0 ") and int("２") are 10 and 2), where a stricter reader would refuse a link Django takes.
import { stripSpace } from "./forms/fields.ts";

const PY_INT = /^[+-]?\p{Nd}+(?:_\p{Nd}+)*$/u;
const DIGIT = /\p{Nd}/u;

/**
 * sys.int_info.default_max_str_digits: int() refuses more digits (leading zeros count) with a
 * ValueError, so Django reads such a page number as not a number (the changelist's page 1).
 */
const MAX_STR_DIGITS = 4300;

/** The number, or undefined where Python's int() raises ValueError. */
export function pythonInt(text: string): number | undefined {
  const s = stripSpace(text);
  if (!PY_INT.test(s)) return undefined;
  let n = 0;
  let digits = 0;
  for (const ch of s) {
    if (!DIGIT.test(ch)) continue;
    if (++digits > MAX_STR_DIGITS) return undefined;
    n = n * 10 + digitValue(ch);
  }
  return s.startsWith("-") ? -n : n;
}

/** Unicode's decimal digits come in runs of ten, 0 to 9, some runs back to back. */
function digitValue(ch: string): number {
  let cp = ch.codePointAt(0)!;
  let fromStart = 0;
  while (DIGIT.test(String.fromCodePoint(cp - 1))) {
    cp--;
    fromStart++;
  }
  return fromStart % 10;
}
