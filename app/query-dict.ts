// Query strings and form bodies as Django's QueryDict reads them. request.GET.get() and
// request.POST.get() give one value a name, the last one given (?p=1&p=2 is page 2, and a form that
// sends `next` twice goes to the second); only getlist() gives them all. Express's parsers give an
// array for a repeated name, which every reader of req.query and req.body would have to expect, and
// a reader that did not would ignore or refuse the field.
import querystring from "node:querystring";
import type { NextFunction, Request, Response } from "express";

type Lists = Record<string, string[]>;

/** Each name's values in the order given; what is not text (no parser here makes it) is dropped. */
function lists(parsed: object): Lists {
  return Object.fromEntries(
    Object.entries(parsed).map(([name, value]) => [
      name,
      [value].flat().filter((v): v is string => typeof v === "string"),
    ]),
  );
}

/** Django's QueryDict.get for every name. */
function lastValues(all: Lists): Record<string, string> {
  return Object.fromEntries(Object.entries(all).map(([name, values]) => [name, values.at(-1) ?? ""]));
}

/**
 * The app's "query parser": node:querystring, as Express's default ("simple") parser, so decoding
 * and its cap of 1000 parameters stay as they were.
 */
export function parseQuery(text: string | null): Record<string, string> {
  return lastValues(lists(querystring.parse(text ?? "")));
}

const bodyLists = new WeakMap<Request, Lists>();

/**
 * After express.urlencoded(), whose decoding and limits stay as they are: req.body holds each
 * field's last value, as request.POST.get() reads it, and the values of a field sent several times
 * are kept for bodyList().
 */
export function lastValueBody(req: Request, _res: Response, next: NextFunction): void {
  const body: unknown = req.body;
  if (typeof body === "object" && body !== null) {
    const all = lists(body);
    bodyLists.set(req, all);
    req.body = lastValues(all);
  }
  next();
}

/** Django's request.POST.getlist(): every value of `name`, for a field of several (checkboxes). */
export function bodyList(req: Request, name: string): string[] {
  const all = bodyLists.get(req);
  return all && Object.hasOwn(all, name) ? all[name]! : [];
}

/** Every field of the form body with all its values, as sent. */
export function bodyFields(req: Request): [string, string][] {
  return Object.entries(bodyLists.get(req) ?? {}).flatMap(([name, values]) =>
    values.map((value): [string, string] => [name, value]),
  );
}
