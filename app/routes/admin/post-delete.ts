// The delete page of one post, as Django's ModelAdmin.delete_view: a confirmation, then the POST.
import type { Router } from "express";
import { caseSensitiveRouter } from "../router.ts";
import type { AdminDeps } from "./index.ts";
import { messages } from "../../messages.ts";
import { MissingObject } from "../../errors.ts";
import { getPost, missingPost, quoted, urls } from "./post-admin.ts";
import { preserving } from "./preserved-filters.ts";
import { DELETION, logEntry } from "../../admin-log.ts";
import { transaction } from "../../db-errors.ts";

export function postDeleteRoutes({ prisma }: AdminDeps): Router {
  const router = caseSensitiveRouter({ strict: true });

  router.get("/:id/delete/", async (req, res) => {
    res.render("admin/delete-confirmation", {
      // Django 5.2 (#35639): as the last breadcrumb; the page asks "Are you sure …?" below it
      title: "Delete",
      post: await getPost(prisma, req.params.id),
    });
  });

  router.post("/:id/delete/", async (req, res) => {
    const post = await getPost(prisma, req.params.id);
    // deleteMany: if someone else deleted it a moment ago, that is a missing post, not an exception.
    const count = await transaction(prisma, async (tx) => {
      const { count } = await tx.post.deleteMany({ where: { id: post.id } });
      if (count > 0) await tx.adminLog.create({ data: logEntry(req.user!, post, DELETION, "") });
      return count;
    });
    if (count === 0) throw new MissingObject(missingPost(req.params.id));
    messages.success(req, `The post ${quoted(post.title)} was deleted successfully.`);
    res.redirect(302, preserving(req)(urls.changelist));
  });

  return router;
}
