// One-time notices shown on the next rendered page ("The post “X” was added successfully."), with
// Django's API shape: messages.success(req, text). Messages live in the session so they survive the
// redirect after a POST. They are plain text: templates escape them like any other value.
import type { NextFunction, Request, Response } from "express";

export type Level = "success" | "info" | "warning" | "error";

export interface Message {
  level: Level;
  text: string;
  /** text.slice(start, end) links to url: Django links a saved object's name to its change page */
  link?: { start: number; end: number; url: string };
}

declare module "express-session" {
  interface SessionData {
    messages?: Message[];
  }
}

function add(level: Level) {
  return (req: Request, text: string, link?: Message["link"]): void => {
    req.session.messages = [...(req.session.messages ?? []), { level, text, ...(link && { link }) }];
  };
}

export const messages = {
  success: add("success"),
  info: add("info"),
  warning: add("warning"),
  error: add("error"),
};

/**
 * Django's admin shows a message with |capfirst: its "post with ID “7” doesn’t exist" reads "Post
 * with ID …". Upper-casing may lengthen the letter ("ß" is "SS"), so a link moves along.
 */
function capfirst(message: Message): Message {
  const [first = ""] = message.text;
  const upper = first.toUpperCase();
  const text = upper + message.text.slice(first.length);
  // offsets past the first letter move by what upper-casing added
  const moved = (at: number) => (at > 0 ? at + upper.length - first.length : at);
  const { link } = message;
  return {
    ...message,
    text,
    ...(link && { link: { ...link, start: moved(link.start), end: moved(link.end) } }),
  };
}

/** Templates call consumeMessages(): messages are removed only when a page actually shows them. */
export function messagesMiddleware(req: Request, res: Response, next: NextFunction): void {
  res.locals.consumeMessages = (): Message[] => {
    // After logout the page is rendered without a session.
    const pending = req.session?.messages ?? [];
    if (pending.length > 0) delete req.session.messages;
    return pending.map(capfirst);
  };
  next();
}
