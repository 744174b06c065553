// The changelist at /admin/core/post/: search (q=), ordering (o=), pages of 100 (p=) and the
// "Delete selected posts" action with its confirmation page, as Django's ChangeList and
// delete_selected action.
import type { Router, Request } from "express";
import { caseSensitiveRouter } from "../router.ts";
import type { AdminDeps } from "./index.ts";
import type { Post, Prisma } from "../../generated/prisma/client.ts";
import { paginate, elidedPageRange } from "../../pagination.ts";
import {
  actionForm,
  DELETE_SELECTED,
  formatOrdering,
  parseOrdering,
  searchQuery,
  searchTerms,
  SORTABLE_COLUMNS,
  type SortColumn,
  type SortKey,
} from "../../forms/changelist.ts";
import { badRequest } from "../../errors.ts";
import { messages } from "../../messages.ts";
import { plural, urls } from "./post-admin.ts";
import { DELETION, logEntry } from "../../admin-log.ts";
import { transaction } from "../../db-errors.ts";
import { bodyList } from "../../query-dict.ts";
import { pythonInt } from "../../python-int.ts";

/** ModelAdmin.list_per_page */
const PER_PAGE = 100;
/** ModelAdmin.list_max_show_all: "Show all" (?all=) lists every match on one page up to this many. */
const MAX_SHOW_ALL = 200;

/** ChangeList's page_num: int(GET.get("p", 1)), where a ValueError is page 1. */
function requestedPage(given: unknown): number {
  return typeof given === "string" ? (pythonInt(given) ?? 1) : 1;
}

const NOTHING_SELECTED =
  "Items must be selected in order to perform actions on them. No items have been changed.";

/** Prisma passes `contains` to ILIKE as is: a typed "%" or "_" would match anything. */
function likeLiteral(word: string): string {
  return word.replace(/[\\%_]/g, (ch) => `\\${ch}`);
}

/** Django's search: every term must appear in the title or the content, in any case. */
function searchWhere(q: string): Prisma.PostWhereInput {
  const words = searchTerms(q).map(likeLiteral);
  return {
    AND: words.map((word) => ({
      OR: [
        { title: { contains: word, mode: "insensitive" } },
        { content: { contains: word, mode: "insensitive" } },
      ],
    })),
  };
}

function orderBy(keys: SortKey[]): Prisma.PostOrderByWithRelationInput[] {
  const fields = keys.map((k) => ({ [SORTABLE_COLUMNS[k.column].field]: k.descending ? "desc" : "asc" }));
  // Django always ends with -pk so that pages never overlap or skip rows.
  return [...fields, { id: "desc" }];
}

/**
 * Django's result_headers: a header click makes its column the primary sort key, reversed if it was
 * sorted; a sorted header also offers to reverse it in place (toggle) or to drop it (remove).
 */
function headers(keys: SortKey[]) {
  return Object.entries(SORTABLE_COLUMNS).map(([number, { label }]) => {
    const column = Number(number) as SortColumn;
    const index = keys.findIndex((k) => k.column === column);
    const current = keys[index];
    const reversed: SortKey = { column, descending: current ? !current.descending : false };
    const others = keys.filter((k) => k.column !== column);
    return {
      label,
      sorted: current ? (current.descending ? "descending" : "ascending") : undefined,
      priority: index + 1,
      ordering: formatOrdering([reversed, ...others]),
      toggle: formatOrdering(keys.map((k) => (k.column === column ? reversed : k))),
      remove: formatOrdering(others),
    };
  });
}

/**
 * Deletes the posts `where` selects and returns those this transaction removed. One statement per
 * post, because its count tells who deleted it: a concurrent bulk delete of the same posts waits
 * for our row locks, then finds them gone (count 0), so each post is logged and counted once.
 */
async function deleteEach(tx: Prisma.TransactionClient, where: Prisma.PostWhereInput): Promise<Post[]> {
  const posts = await tx.post.findMany({ where, orderBy: { id: "desc" } });
  const deleted: Post[] = [];
  for (const post of posts) {
    const { count } = await tx.post.deleteMany({ where: { id: post.id } });
    if (count > 0) deleted.push(post);
  }
  return deleted;
}

/** The posts the changelist at this URL lists, on all of its pages. */
function changelistWhere(req: Request): Prisma.PostWhereInput {
  const search = searchQuery.safeParse(req.query.q);
  return search.success && search.data ? searchWhere(search.data) : {};
}

export function changelistRoutes({ prisma }: AdminDeps): Router {
  const router = caseSensitiveRouter({ strict: true });

  /** Back to the same view after a deletion, on its last page if the deletion emptied the page it was on. */
  async function backAfterDeletion(req: Request): Promise<string> {
    const count = await prisma.post.count({ where: changelistWhere(req) });
    if (req.query.p === undefined || paginate(count, PER_PAGE, requestedPage(req.query.p)))
      return req.originalUrl;
    const url = new URL(req.originalUrl, "http://local.invalid");
    url.searchParams.set("p", String(paginate(count, PER_PAGE, "last")!.number));
    return `${url.pathname}${url.search}`;
  }

  router.get("/", async (req, res) => {
    const search = searchQuery.safeParse(req.query.q);
    // Django's ChangeList: a search its form refuses (a NUL) is an error message over the whole list.
    if (!search.success) messages.error(req, search.error.issues[0]!.message);
    const q = search.success ? search.data : "";
    const keys = parseOrdering(req.query.o);
    const where = q ? searchWhere(q) : {};
    const [count, total] = await Promise.all([
      prisma.post.count({ where }),
      q ? prisma.post.count() : undefined,
    ]);
    // Django's ChangeList: ?all= is honoured only up to MAX_SHOW_ALL matches, else pages as usual
    const canShowAll = count <= MAX_SHOW_ALL;
    const showAll = req.query.all !== undefined && canShowAll;
    // Django's ChangeList reads a malformed p= as page 1 and ignores p= on a single page; a whole
    // number that is no page (0, negative, past the end) is an IncorrectLookupParameters, which it
    // answers with a redirect to ?e=1 (page 1).
    const multiPage = count > PER_PAGE && !showAll;
    const page = multiPage
      ? paginate(count, PER_PAGE, requestedPage(req.query.p))
      : paginate(count, count || 1, 1);
    if (!page) return res.redirect(302, `${urls.changelist}?e=1`);
    const posts = await prisma.post.findMany({
      where,
      orderBy: orderBy(keys),
      skip: page.offset,
      take: page.perPage,
    });
    res.render("admin/change-list", {
      title: "Select post to change",
      posts,
      q,
      o: formatOrdering(keys),
      count,
      total,
      // Django's search_form: the "N results (M total)" line only when the search leaves posts out
      showResultCount: total !== undefined && count !== total,
      // Django's show_admin_actions: no actions while there is no post at all, searched for or not
      showActions: (total ?? count) > 0,
      page,
      pageRange: elidedPageRange(page),
      // kept in every link of the page, as Django keeps its query string; offered on multi-page lists
      all: req.query.all !== undefined ? null : undefined,
      showAllUrl: canShowAll && !showAll && count > PER_PAGE,
      headers: headers(keys),
      plural,
      DELETE_SELECTED,
    });
  });

  router.post("/", async (req: Request, res) => {
    const form = actionForm.safeParse({ ...req.body, _selected_action: bodyList(req, "_selected_action") });
    if (!form.success) throw badRequest(form.error.issues[0]?.message);
    const { action, _selected_action: ticked, select_across: across, post: confirmed } = form.data;
    // Back to the same changelist view (search, order, page), as Django does.
    const back = req.originalUrl;
    if (ticked.length === 0) {
      messages.warning(req, NOTHING_SELECTED);
      return res.redirect(302, back);
    }
    if (action !== DELETE_SELECTED) {
      messages.warning(req, "No action selected.");
      return res.redirect(302, back);
    }
    // As Django's response_action: the posts the changelist lists, all of them with "Select all N
    // posts", else those of them ticked (a ticked post its search no longer matches is left alone)
    const listed = changelistWhere(req);
    const where = across ? listed : { AND: [listed, { id: { in: ticked } }] };
    if (!confirmed) {
      const posts = await prisma.post.findMany({ where, orderBy: { id: "desc" } });
      if (posts.length === 0) {
        messages.warning(req, NOTHING_SELECTED);
        return res.redirect(302, back);
      }
      return res.render("admin/delete-selected-confirmation", {
        title: "Delete multiple objects",
        posts,
        objectsName: plural(posts.length),
        back,
        DELETE_SELECTED,
      });
    }
    const deleted = await transaction(prisma, async (tx) => {
      const gone = await deleteEach(tx, where);
      await tx.adminLog.createMany({ data: gone.map((p) => logEntry(req.user!, p, DELETION, "")) });
      return gone.length;
    });
    // Django's delete_selected says nothing when the posts were gone already (deleted meanwhile).
    if (deleted > 0) messages.success(req, `Successfully deleted ${deleted} ${plural(deleted)}.`);
    res.redirect(302, await backAfterDeletion(req));
  });

  return router;
}
