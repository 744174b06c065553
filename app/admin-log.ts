// Django's LogEntry for our one model: every add, change and delete made in the admin is recorded,
// in the same transaction as the change itself, for the History page and "Recent actions".
import type { AdminLog, Post, Prisma, User } from "./generated/prisma/client.ts";
import type { PostInput } from "./forms/post.ts";

export const ADDITION = 1;
export const CHANGE = 2;
export const DELETION = 3;
type ActionFlag = typeof ADDITION | typeof CHANGE | typeof DELETION;

/** LogEntry.object_repr is a CharField(max_length=200). */
const REPR_MAX = 200;

/** Field labels, as Django's change messages name them. */
const LABELS: Record<keyof PostInput, string> = { title: "Title", content: "Content" };

export function logEntry(
  user: User,
  post: Post,
  flag: ActionFlag,
  changeMessage: string,
): Prisma.AdminLogCreateManyInput {
  return {
    userId: user.id,
    objectId: String(post.id),
    objectRepr: [...post.title].slice(0, REPR_MAX).join(""),
    actionFlag: flag,
    changeMessage,
  };
}

export const ADDED_MESSAGE = JSON.stringify([{ added: {} }]);

/** [{"changed": {"fields": ["Title"]}}], or [] when the form changed nothing. */
export function changedMessage(before: PostInput, after: PostInput): string {
  const fields = (Object.keys(LABELS) as (keyof PostInput)[])
    .filter((key) => before[key] !== after[key])
    .map((key) => LABELS[key]);
  return JSON.stringify(fields.length > 0 ? [{ changed: { fields } }] : []);
}

/** "A", "A and B", "A, B and C": Django's get_text_list(). */
function textList(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}

/** LogEntry.get_change_message(): the sentence shown on the History page. */
export function describeChange(entry: Pick<AdminLog, "changeMessage">): string {
  if (!entry.changeMessage.startsWith("[")) return entry.changeMessage;
  let parts: { added?: object; changed?: { fields?: string[] }; deleted?: object }[];
  try {
    parts = JSON.parse(entry.changeMessage);
  } catch {
    return entry.changeMessage;
  }
  const sentences = parts.flatMap((part) => {
    if (part.added) return ["Added."];
    if (part.changed) return [`Changed ${textList(part.changed.fields ?? [])}.`];
    if (part.deleted) return ["Deleted."];
    return [];
  });
  return sentences.join(" ") || "No fields changed.";
}
