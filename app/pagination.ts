// Django's Paginator, reduced to what the post list and the changelist need: page numbers start at 1,
// an empty first page is allowed, and a page that is out of range is reported as invalid (the routes
// answer as Django does) instead of reaching the database as a bad OFFSET.

import { pythonInt } from "./python-int.ts";

export interface Page {
  number: number;
  numPages: number;
  count: number;
  perPage: number;
  /** rows to skip */
  offset: number;
  hasPrevious: boolean;
  hasNext: boolean;
}

/** The page `requested` ("last": ListView's name for the last page), or undefined if there is none. */
export function paginate(count: number, perPage: number, requested: number | "last"): Page | undefined {
  const numPages = Math.max(1, Math.ceil(count / perPage));
  const number = requested === "last" ? numPages : requested;
  if (number < 1 || number > numPages) return undefined;
  return {
    number,
    numPages,
    count,
    perPage,
    offset: (number - 1) * perPage,
    hasPrevious: number > 1,
    hasNext: number < numPages,
  };
}

/** Django's Paginator.get_page(): a page number that is not a number is page 1, one past either end the last page. */
export function getPage(count: number, perPage: number, given: unknown): Page {
  const number = typeof given === "string" ? (pythonInt(given) ?? 1) : 1;
  return paginate(count, perPage, number) ?? paginate(count, perPage, "last")!;
}

export const ELLIPSIS = "…";

/** Django's get_elided_page_range(): the ends and the neighbourhood of the current page, "…" between. */
export function elidedPageRange(page: Page, onEachSide = 3, onEnds = 2): (number | typeof ELLIPSIS)[] {
  const all = Array.from({ length: page.numPages }, (_, i) => i + 1);
  if (page.numPages <= (onEachSide + onEnds) * 2) return all;
  const range: (number | typeof ELLIPSIS)[] = [];
  if (page.number > 1 + onEachSide + onEnds + 1) {
    range.push(...all.slice(0, onEnds), ELLIPSIS, ...all.slice(page.number - 1 - onEachSide, page.number));
  } else {
    range.push(...all.slice(0, page.number));
  }
  if (page.number < page.numPages - onEachSide - onEnds - 1) {
    range.push(
      ...all.slice(page.number, page.number + onEachSide),
      ELLIPSIS,
      ...all.slice(page.numPages - onEnds),
    );
  } else {
    range.push(...all.slice(page.number));
  }
  return range;
}
