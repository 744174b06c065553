// Django's preserve_filters: the changelist's search, order and page go with its links to the add
// and change pages (as ?_changelist_filters=q%3Dx%26p%3D2), and the redirect after a save or a
// delete takes the user back to the changelist as they left it.
import type { NextFunction, Request, Response } from "express";
import { urls } from "./post-admin.ts";

/** The changelist's query parameters (ChangeList's q, o, p, all); anything else is not carried. */
const CARRIED = ["q", "o", "p", "all"];

const FILTERS = "_changelist_filters";

/** Only the changelist's own parameters, whatever a tampered URL brings along. */
function keepCarried(params: URLSearchParams): string {
  const kept = new URLSearchParams();
  for (const [key, value] of params) if (CARRIED.includes(key)) kept.append(key, value);
  return kept.toString();
}

/** Django's get_preserved_filters: the changelist's own query, or what another page was given. */
function preservedFilters(req: Request): string {
  const url = new URL(req.originalUrl, "http://local.invalid");
  if (url.pathname === urls.changelist) return keepCarried(url.searchParams);
  const given = req.query[FILTERS];
  return keepCarried(new URLSearchParams(typeof given === "string" ? given : ""));
}

/**
 * Django's add_preserved_filters, for `req`: the changelist gets the filters back as its query,
 * any other admin URL carries them.
 */
export function preserving(req: Request): (url: string) => string {
  const filters = preservedFilters(req);
  return (url) => {
    if (!filters) return url;
    if (url === urls.changelist) return `${url}?${filters}`;
    return `${url}?${new URLSearchParams({ [FILTERS]: filters }).toString()}`;
  };
}

/** Gives the post admin's templates `preserve(url)`. */
export function preserveFilters(req: Request, res: Response, next: NextFunction): void {
  res.locals.preserve = preserving(req);
  next();
}
