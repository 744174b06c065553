// The tutorial's public page, "Post List", and a page per post.
import type { Router } from "express";
import { caseSensitiveRouter } from "./router.ts";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { paginate, elidedPageRange } from "../pagination.ts";
import { parseId } from "../forms/ids.ts";
import { notFound } from "../errors.ts";
import { pythonInt } from "../python-int.ts";

/** Django's ListView idiom (paginate_by); the tutorial's page had no paging at all. */
export const POSTS_PER_PAGE = 10;

/**
 * As Django's ListView: `GET.get("page") or 1`, then int(), or "last"; anything else is a 404
 * ("Page is not “last”, nor can it be converted to an int."), as a page out of range is.
 */
function requestedPage(given: unknown): number | "last" | undefined {
  if (given === undefined || given === "") return 1;
  if (typeof given !== "string") return undefined;
  return given === "last" ? "last" : pythonInt(given);
}

export function postsRouter(prisma: PrismaClient): Router {
  const router = caseSensitiveRouter();

  router.get("/", async (req, res) => {
    const count = await prisma.post.count();
    const requested = requestedPage(req.query.page);
    const page = requested === undefined ? undefined : paginate(count, POSTS_PER_PAGE, requested);
    if (!page) throw notFound("That page contains no results.");
    const posts = await prisma.post.findMany({
      // id breaks ties between posts created in the same microsecond
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      skip: page.offset,
      take: POSTS_PER_PAGE,
    });
    res.render("posts/list", { title: "Post List", posts, page, pageRange: elidedPageRange(page) });
  });

  router.get("/posts/:id", async (req, res) => {
    // Django's <int:pk> takes ASCII digits only (leading zeros too), then int()
    const id = /^[0-9]+$/.test(req.params.id) ? parseId(req.params.id) : undefined;
    const post = id === undefined ? null : await prisma.post.findUnique({ where: { id } });
    if (!post) throw notFound("No post found matching the query.");
    res.render("posts/detail", { title: post.title, post });
  });

  return router;
}
