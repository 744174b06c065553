// A post's History page, as Django's ModelAdmin.history_view.
import type { Router } from "express";
import { caseSensitiveRouter } from "../router.ts";
import type { AdminDeps } from "./index.ts";
import { getPost } from "./post-admin.ts";
import { describeChange } from "../../admin-log.ts";
import { elidedPageRange, getPage } from "../../pagination.ts";

/** history_view's paginator: 100 entries a page. */
const PER_PAGE = 100;

export function historyRoutes({ prisma }: AdminDeps): Router {
  const router = caseSensitiveRouter({ strict: true });

  router.get("/:id/history/", async (req, res) => {
    const post = await getPost(prisma, req.params.id);
    const where = { objectId: String(post.id) };
    const page = getPage(await prisma.adminLog.count({ where }), PER_PAGE, req.query.p);
    const entries = await prisma.adminLog.findMany({
      where,
      include: { user: true },
      orderBy: [{ actionTime: "asc" }, { id: "asc" }],
      skip: page.offset,
      take: page.perPage,
    });
    res.render("admin/object-history", {
      title: `Change history: ${post.title}`,
      post,
      entries,
      page,
      pageRange: elidedPageRange(page),
      // the page links keep the changelist's state, which the breadcrumbs lead back to
      pageParams: { _changelist_filters: req.query._changelist_filters },
      describeChange,
    });
  });

  return router;
}
