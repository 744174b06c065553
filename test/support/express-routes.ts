// Every route an Express 5 app answers, read from its router, so that a test over "all routes"
// covers a route added later without being told about it.
import type { Express } from "express";

export interface AppRoute {
  /** "get", "post", … or "all" for route.all() */
  method: string;
  /** the full path pattern, e.g. /admin/core/post/:id/change/ */
  path: string;
}

/** What Express 5's router (the `router` package) keeps on each layer; not in its typings. */
interface Layer {
  rawPath?: string | string[];
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

function* walk(stack: Layer[], prefix: string): Generator<AppRoute> {
  for (const layer of stack) {
    if (layer.route) {
      for (const path of [layer.route.path].flat()) {
        for (const [method, on] of Object.entries(layer.route.methods)) {
          if (on) yield { method: method === "_all" ? "all" : method, path: `${prefix}${path}` };
        }
      }
    } else if (layer.handle?.stack) {
      // A router used without a path is mounted at "/": it adds nothing to the prefix.
      for (const path of [layer.rawPath ?? "/"].flat()) {
        yield* walk(layer.handle.stack, path === "/" ? prefix : `${prefix}${path}`);
      }
    }
  }
}

export function listRoutes(app: Express): AppRoute[] {
  const router = (app as unknown as { router: { stack: Layer[] } }).router;
  return [...walk(router.stack, "")];
}
