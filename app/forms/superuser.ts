// The fields createsuperuser asks for, with the messages of Django's User model.
import { z } from "zod";
import { isValidEmail } from "./email.ts";

const USERNAME = /^[\p{L}\p{N}_.@+-]+$/u;

/** Django's MaxLengthValidator, counting characters as Python does. */
function maxLength(ctx: z.RefinementCtx, value: string, max: number): void {
  const length = [...value].length;
  if (length > max) {
    ctx.addIssue({
      code: "custom",
      message: `Ensure this value has at most ${max} characters (it has ${length}).`,
    });
  }
}

/**
 * Django's model-field wording, which createsuperuser prints after "Error: ". As Field.clean: a
 * blank value stops there; otherwise every validator runs, the field's own before max_length's.
 */
export const usernameSchema = z.string().superRefine((value, ctx) => {
  if (value === "") {
    ctx.addIssue({ code: "custom", message: "This field cannot be blank." });
    return;
  }
  if (!USERNAME.test(value)) {
    ctx.addIssue({
      code: "custom",
      message:
        "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
    });
  }
  maxLength(ctx, value, 150);
});

const INVALID_EMAIL = "Enter a valid email address.";

/** Optional, as Django's EmailField(blank=True): its EmailValidator, then its max_length of 254. */
export const emailSchema = z.string({ error: INVALID_EMAIL }).superRefine((email, ctx) => {
  if (email === "") return;
  if (!isValidEmail(email)) ctx.addIssue({ code: "custom", message: INVALID_EMAIL });
  maxLength(ctx, email, 254);
});

/** All the messages, as Django's `"; ".join(e.messages)`. */
export function errorsOf(result: z.ZodSafeParseResult<unknown>): string | undefined {
  return result.success ? undefined : result.error.issues.map((issue) => issue.message).join("; ");
}
