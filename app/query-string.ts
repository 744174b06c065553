// The query string as Django's request.GET.get() reads it: one value a name, the last one given
// (?p=1&p=2 is page 2). Express's own parser gives an array for a repeated name, which every reader
// of req.query would have to expect, and a reader that did not would ignore or refuse the parameter.
import querystring from "node:querystring";
import { lastValue } from "./forms/fields.ts";

/**
 * The app's "query parser": node:querystring, as Express's default ("simple") parser, so decoding
 * and its cap of 1000 parameters stay as they were.
 */
export function parseQuery(text: string | null): Record<string, string> {
  const parsed = querystring.parse(text ?? "");
  return Object.fromEntries(Object.entries(parsed).map(([name, value]) => [name, lastValue(value) ?? ""]));
}
