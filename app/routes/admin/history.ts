// A post's History page, as Django's ModelAdmin.history_view.
import type { Router } from "express";
import { caseSensitiveRouter } from "../router.ts";
import type { AdminDeps } from "./index.ts";
import { getPost } from "./post-admin.ts";
import { describeChange } from "../../admin-log.ts";

export function historyRoutes({ prisma }: AdminDeps): Router {
  const router = caseSensitiveRouter({ strict: true });

  router.get("/:id/history/", async (req, res) => {
    const post = await getPost(prisma, req.params.id);
    const entries = await prisma.adminLog.findMany({
      where: { objectId: String(post.id) },
      include: { user: true },
      orderBy: [{ actionTime: "asc" }, { id: "asc" }],
    });
    res.render("admin/object-history", {
      title: `Change history: ${post.title}`,
      post,
      entries,
      describeChange,
    });
  });

  return router;
}
