// Django answers a method that a URL's view does not take with 405 and an Allow header
// (View.http_method_not_allowed), and keeps 404 for URLs that do not exist. Express's router skips a
// route whose method differs, so such a request would end in the 404. Placed after the routes, this
// middleware asks the router which of its routes match the path and answers with their methods, so
// that every route, including one added later, gets the 405 without saying so.
import type { NextFunction, Request, Response } from "express";
import { HttpError } from "./errors.ts";

/** What Express 5's router (the `router` package, 2.3) keeps on each layer; not in its typings. */
interface Layer {
  /** the layer's own matcher: the part of the path it matched, or false */
  match(path: string): { path: string } | false;
  route?: { methods: Record<string, boolean | undefined> };
  handle?: { stack?: Layer[] };
}

export interface RouterLike {
  stack: unknown[];
}

/** Django's order (View.http_method_names); every URL answers OPTIONS, below. */
const METHOD_ORDER = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/** The methods of the routes in `stack` (and in the routers mounted on it) that match `path`. */
function* routeMethods(stack: Layer[], path: string): Generator<string> {
  for (const layer of stack) {
    const match = layer.match(path);
    if (!match) continue;
    if (layer.route) {
      for (const [method, on] of Object.entries(layer.route.methods)) {
        // route.all() takes every method: such a route never leaves a method out
        if (on && method !== "_all") yield method.toUpperCase();
      }
    } else if (layer.handle?.stack) {
      // What the mounted router is given, as Express strips the mount path.
      const rest = path.slice(match.path.length);
      yield* routeMethods(layer.handle.stack, rest.startsWith("/") ? rest : `/${rest}`);
    }
  }
}

/** The methods `router` takes at `path`, in Django's order; none when no route has that path. */
function allowedMethods(router: RouterLike, path: string): string[] {
  const methods = new Set(routeMethods(router.stack as Layer[], path));
  if (methods.size === 0) return [];
  // Express answers HEAD with the GET route; OPTIONS is answered for any route, here.
  if (methods.has("GET")) methods.add("HEAD");
  methods.add("OPTIONS");
  return METHOD_ORDER.filter((m) => methods.has(m));
}

/**
 * 405 with Allow for a path that `router`'s routes have, none of them for this method; OPTIONS gets
 * the Allow header and an empty body (Django's View.options), whichever router holds the routes
 * (routes/router.ts). Any other request goes on, to the 404.
 */
export function methodNotAllowed(router: RouterLike) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const allowed = allowedMethods(router, req.path);
    // A route that took the method and passed the request on leaves it to the 404 as before.
    if (allowed.length === 0 || (allowed.includes(req.method) && req.method !== "OPTIONS")) return next();
    res.set("Allow", allowed.join(", "));
    if (req.method === "OPTIONS") return void res.end();
    throw new HttpError(405);
  };
}
