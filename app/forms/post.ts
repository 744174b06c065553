import { z } from "zod";
import { text } from "./fields.ts";

/** The tutorial's model: title = CharField(max_length=255), content = TextField(). */
export const postForm = z.object({
  title: text({ max: 255 }),
  content: text(),
});

export type PostInput = z.output<typeof postForm>;
