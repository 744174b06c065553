// The Express app, built from its dependencies so that tests drive the real thing with supertest
// and app/server.ts only adds the listening socket and the shutdown.
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";
import express, { type Express } from "express";
import helmet from "helmet";
import { pinoHttp } from "pino-http";
import type { Logger } from "pino";
import type session from "express-session";
import type { PrismaClient } from "./generated/prisma/client.ts";
import type { AppConfig } from "./config.ts";
import { createLogger } from "./logger.ts";
import { createAuth, saveSessionBeforeRedirect, sessionMiddleware } from "./auth/session.ts";
import { createCsrfProtection, csrfToken } from "./auth/csrf.ts";
import { messagesMiddleware } from "./messages.ts";
import { postsRouter } from "./routes/posts.ts";
import { adminRouter } from "./routes/admin/index.ts";
import { errorHandler, notFoundHandler } from "./error-pages.ts";
import { HttpError } from "./errors.ts";
import { methodNotAllowed } from "./method-not-allowed.ts";
import { lastValueBody, parseQuery } from "./query-dict.ts";
import { viewHelpers } from "./views.ts";
import type { PoolerMonitor } from "./pooler/monitor.ts";

export type AppSettings = Pick<
  AppConfig,
  "production" | "sessionSecret" | "behindTls" | "trustProxy" | "scryptN" | "logLevel"
>;

export interface AppDeps {
  config: AppSettings;
  prisma: PrismaClient;
  /** One store per app: express-session ties its cookie settings to the store it is given. */
  sessionStore: session.Store;
  /** the app's one reader of the pooler's console, for /admin/pooler/ (the caller closes it) */
  poolerMonitor: PoolerMonitor;
  /** defaults to a pino logger at config.logLevel */
  logger?: Logger;
}

/** The folder holding views/ and app/public/, run from app/ (tsx) or from dist/app/ (compiled). */
const ROOT = path.resolve(
  import.meta.dirname,
  path.basename(path.dirname(import.meta.dirname)) === "dist" ? "../.." : "..",
);

/**
 * uPlot's browser build, served from its package (a runtime dependency) so that /admin/pooler/
 * works offline and the version is the one package-lock.json pins.
 */
const UPLOT_DIST = path.dirname(createRequire(import.meta.url).resolve("uplot"));

/**
 * Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB): a post Django's admin would save is saved here too.
 * A larger body is refused before it is read (the error page says why: error-pages.ts).
 */
const BODY_LIMIT = 2_621_440;

export function createApp({ config, prisma, sessionStore, poolerMonitor, logger }: AppDeps): Express {
  const app = express();
  const log = logger ?? createLogger(config.logLevel);
  const auth = createAuth(prisma, config.sessionSecret);

  app.set("trust proxy", config.trustProxy);
  // As Django's URLs: /ADMIN/ is not /admin/. The app's routers say the same (routes/router.ts).
  app.set("case sensitive routing", true);
  // As Django's QueryDict.get, every reader of req.query sees a repeated parameter's last value.
  app.set("query parser", parseQuery);
  app.set("views", path.join(ROOT, "views"));
  app.set("view engine", "ejs");
  // EJS reads this setting: drop the indentation of the templates from the HTML sent.
  app.set("view options", { rmWhitespace: true });
  Object.assign(app.locals, viewHelpers);

  app.use(
    pinoHttp({
      logger: log,
      // Honour a proxy's request id so log lines can be matched across services, but only a sane one.
      genReqId: (req, res) => {
        const given = req.headers["x-request-id"];
        const id = typeof given === "string" && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
        res.setHeader("x-request-id", id);
        return id;
      },
    }),
  );
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          "frame-ancestors": ["'none'"],
          // Plain-HTTP demo runs would otherwise have every subresource rewritten to https.
          "upgrade-insecure-requests": config.behindTls ? [] : null,
        },
      },
      strictTransportSecurity: config.behindTls,
      referrerPolicy: { policy: "same-origin" },
      xFrameOptions: { action: "deny" },
    }),
  );
  const staticOptions = { maxAge: config.production ? "1h" : 0 };
  app.use("/static/vendor/uplot", express.static(UPLOT_DIST, staticOptions));
  app.use("/static", express.static(path.join(ROOT, "app", "public"), staticOptions));

  // Browsers ask for it on every page; answered before the session (and its database round trip).
  app.get("/favicon.ico", (_req, res) => void res.status(204).end());
  // A request target that is no path (`OPTIONS *`) names no URL of ours; the session cookie, whose
  // path is "/", would not be loaded for it either.
  app.use((req, _res, next) => next(req.path.startsWith("/") ? undefined : new HttpError(404)));
  // The body before the session: if the session cannot be loaded (database down), the error page
  // can still offer back what was sent.
  app.use(express.urlencoded({ extended: false, limit: BODY_LIMIT }), lastValueBody);
  app.use(sessionMiddleware(config, sessionStore));
  app.use(saveSessionBeforeRedirect);
  app.use(createCsrfProtection(config));
  app.use(messagesMiddleware);
  app.use(auth.loadUser);
  app.use((req, res, next) => {
    res.locals.user = req.user;
    // A function, so that only pages with a form set the csrftoken cookie.
    res.locals.csrfToken = () => csrfToken(req);
    next();
  });

  app.use(postsRouter(prisma));
  app.use("/admin", adminRouter({ prisma, auth, scryptN: config.scryptN, poolerMonitor }));

  // After the routers and their guards: an anonymous visitor is sent to log in before being told a
  // method is not allowed, as Django's admin_view runs before the view.
  app.use(methodNotAllowed(app.router));
  app.use(notFoundHandler);
  app.use(errorHandler(config.production));
  return app;
}
