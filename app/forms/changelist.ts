// The changelist's query string and its action form. Unknown or malformed values are ignored or
// refused with a 400, never passed on to the database.
import { z } from "zod";
import { field, text } from "./fields.ts";
import { parseId } from "./ids.ts";
import { pythonInt } from "../python-int.ts";

/** list_display of our ModelAdmin; index 0 is Django's action checkbox, as in its `o=` numbers. */
export const SORTABLE_COLUMNS = {
  1: { label: "Title", field: "title" },
  2: { label: "Created", field: "createdAt" },
} as const;

export type SortColumn = keyof typeof SORTABLE_COLUMNS;

export interface SortKey {
  column: SortColumn;
  descending: boolean;
}

/**
 * Django's `o=` value, e.g. "-2.1": dot-separated column numbers, "-" for descending. As its
 * get_ordering, each part is split at its last "-" (rpartition) and the rest read with int(), so
 * "01" is column 1 and "x-1" is column 1 descending; a part that names no sortable column is skipped.
 */
export function parseOrdering(raw: unknown): SortKey[] {
  if (typeof raw !== "string") return [];
  const keys: SortKey[] = [];
  for (const part of raw.split(".")) {
    const dash = part.lastIndexOf("-");
    const column = pythonInt(part.slice(dash + 1));
    if (column === undefined || !(column in SORTABLE_COLUMNS) || keys.some((k) => k.column === column))
      continue;
    keys.push({ column: column as SortColumn, descending: dash >= 0 });
  }
  return keys;
}

export function formatOrdering(keys: SortKey[]): string {
  return keys.map((k) => `${k.descending ? "-" : ""}${k.column}`).join(".");
}

/**
 * Django has no limit, but runs one request per worker; here Prisma compiles the query on the event
 * loop, anew for each number of terms (about 4 s of CPU for 7,000, while no other request is
 * answered), so a search's different words are bounded.
 */
export const MAX_SEARCH_TERMS = 100;

/** Django's ChangeListSearchForm: no max_length (the URL's length, 16 KB of headers in Node, bounds it). */
export const searchQuery = text({ required: false }).superRefine((q, ctx) => {
  const terms = searchTerms(q).length;
  if (terms > MAX_SEARCH_TERMS) {
    ctx.addIssue({
      code: "custom",
      message: `Ensure this search has at most ${MAX_SEARCH_TERMS} different words (it has ${terms}).`,
    });
  }
});

/**
 * Django's smart_split: words split on whitespace, except inside quotes, so `"100% sure"` is one
 * term. Python's pattern, unchanged.
 */
const SMART_SPLIT = /[^\s'"]*(?:(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')[^\s'"]*)+|\S+/g;

/**
 * The terms of a search, as ModelAdmin.get_search_results reads them: a quoted term loses its quotes.
 * Each once: every term must match, so a repeated one changes nothing.
 */
export function searchTerms(q: string): string[] {
  const terms = [...q.matchAll(SMART_SPLIT)].map(([bit]) => {
    const quote = bit[0]!;
    if ((quote !== '"' && quote !== "'") || bit.at(-1) !== quote) return bit;
    // Django's unescape_string_literal
    return bit.slice(1, -1).replaceAll(`\\${quote}`, quote).replaceAll("\\\\", "\\");
  });
  return [...new Set(terms)];
}

export const DELETE_SELECTED = "delete_selected";

export const actionForm = z.object({
  action: text({ required: false }),
  // The one field of several values: the route gives it every one (Django's getlist).
  _selected_action: field().transform((raw, ctx): number[] => {
    const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
    const ids = list.map(parseId);
    if (ids.some((id) => id === undefined)) {
      ctx.addIssue({ code: "custom", message: "Select a valid choice." });
      return z.NEVER;
    }
    return [...new Set(ids as number[])];
  }),
  // Django's ActionForm.select_across, a BooleanField: "0" and "false" are False, any other text True
  select_across: field().transform(
    (raw) => typeof raw === "string" && !["", "0", "false"].includes(raw.toLowerCase()),
  ),
  // delete_selected reads request.POST.get("post"): any value confirms; the form sends "yes"
  post: field().transform((raw) => typeof raw === "string" && raw !== ""),
});
