// The routers of the site. Django's URL patterns are case-sensitive (/ADMIN/ is a 404), while
// Express matches paths in any case unless told otherwise, router by router.
//
// Express's router also answers OPTIONS by itself as a request leaves a router with routes for its
// path but not for OPTIONS, in its own way (no OPTIONS in Allow, alphabetical order, the list as a
// text body). Every route made here takes OPTIONS and passes it on, so that it is answered once, in
// Django's way and after the login guard, by methodNotAllowed (app/method-not-allowed.ts).
import { Router, type NextFunction, type Request, type Response } from "express";

const passOn = (_req: Request, _res: Response, next: NextFunction): void => next();

export function caseSensitiveRouter(options: { strict?: boolean } = {}): Router {
  const router = Router({ caseSensitive: true, ...options });
  const route = router.route.bind(router);
  // router.get(), .post() … make their routes through router.route()
  router.route = (path: string) => route(path).options(passOn);
  return router;
}
