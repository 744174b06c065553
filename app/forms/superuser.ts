// The fields createsuperuser asks for, with the messages of Django's User model.
import { z } from "zod";
import { isValidEmail } from "./email.ts";

const USERNAME = /^[\p{L}\p{N}_.@+-]+$/u;

/** Django's model-field wording, which createsuperuser prints after "Error: ". */
export const usernameSchema = z.string().superRefine((value, ctx) => {
  const length = [...value].length;
  if (length === 0) ctx.addIssue({ code: "custom", message: "This field cannot be blank." });
  else if (length > 150) {
    ctx.addIssue({
      code: "custom",
      message: `Ensure this value has at most 150 characters (it has ${length}).`,
    });
  } else if (!USERNAME.test(value)) {
    ctx.addIssue({
      code: "custom",
      message:
        "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
    });
  }
});

const INVALID_EMAIL = "Enter a valid email address.";

/** Optional, as Django's EmailField(blank=True), and checked as Django's EmailValidator does. */
export const emailSchema = z
  .string({ error: INVALID_EMAIL })
  .max(254, { error: INVALID_EMAIL })
  .refine((email) => email === "" || isValidEmail(email), { error: INVALID_EMAIL });

export function firstError(result: z.ZodSafeParseResult<unknown>): string | undefined {
  return result.success ? undefined : result.error.issues[0]?.message;
}
