// The routers of the site. Django's URL patterns are case-sensitive (/ADMIN/ is a 404), while
// Express matches paths in any case unless told otherwise, router by router.
import { Router } from "express";

export function caseSensitiveRouter(options: { strict?: boolean } = {}): Router {
  return Router({ caseSensitive: true, ...options });
}
