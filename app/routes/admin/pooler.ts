// The pooler's live picture at /admin/pooler/: a page whose script (app/public/pooler.js) fetches
// data.json once a second. The numbers come from the app's one PoolerMonitor, not from each request.
import type { Router } from "express";
import { caseSensitiveRouter } from "../router.ts";
import type { AdminDeps } from "./index.ts";

export const POOLER_URL = "/admin/pooler/";

export function poolerRoutes({ poolerMonitor }: AdminDeps): Router {
  const router = caseSensitiveRouter({ strict: true });

  router.get("/", (_req, res) => {
    res.render("admin/pooler", { title: "Pooler", dataUrl: `${POOLER_URL}data.json` });
  });

  // An unreachable pooler is part of the answer (its `error`), not a failed request.
  router.get("/data.json", async (_req, res) => {
    res.json(await poolerMonitor.watch());
  });

  return router;
}
