// What the admin pages for Post share: its names, its URLs and Django's sentences about it.
// The model admin is Django's default one, except that a post shows as its title rather than
// "Post object (1)".
import type { Post, PrismaClient } from "../../generated/prisma/client.ts";
import { parseId } from "../../forms/ids.ts";
import { MissingObject } from "../../errors.ts";

export const BASE = "/admin/core/post/";

export const urls = {
  /** the app index of "core", the tutorial's Django app */
  app: "/admin/core/",
  changelist: BASE,
  add: `${BASE}add/`,
  change: (id: number): string => `${BASE}${id}/change/`,
  delete: (id: number): string => `${BASE}${id}/delete/`,
  history: (id: number): string => `${BASE}${id}/history/`,
  /** the post's public page: Django's "View on site", for a model with get_absolute_url */
  onSite: (id: number): string => `/posts/${id}`,
};

export function plural(count: number): string {
  return count === 1 ? "post" : "posts";
}

/** Django quotes object names with typographic quotes: The post “Hello” was added successfully. */
export function quoted(title: string): string {
  return `“${title}”`;
}

/** The raw id is shown as given, as Django does, so that a mistyped URL is recognisable. */
export function missingPost(rawId: string): string {
  return `post with ID ${quoted(rawId)} doesn’t exist. Perhaps it was deleted?`;
}

/** The post named by a URL's id, or null for a missing post or an id that is not one. */
export function findPost(prisma: PrismaClient, rawId: string): Promise<Post | null> {
  const id = parseId(rawId);
  return id === undefined ? Promise.resolve(null) : prisma.post.findUnique({ where: { id } });
}

/** The same, or Django's answer for a missing object (a warning on the admin index). */
export async function getPost(prisma: PrismaClient, rawId: string): Promise<Post> {
  const post = await findPost(prisma, rawId);
  if (!post) throw new MissingObject(missingPost(rawId));
  return post;
}
