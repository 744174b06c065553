import { z } from "zod";
import { normalizeUsername, text } from "./fields.ts";
import { validatePassword } from "../auth/password-validation.ts";

export const loginForm = z.object({
  username: text({ max: 150, normalize: normalizeUsername }),
  password: text({ strip: false }),
});

/** Checks that need no database; the old password is verified by the route. */
export function passwordChangeForm(user: { username: string; email: string }) {
  return z
    .object({
      old_password: text({ strip: false }),
      new_password1: text({ strip: false }),
      new_password2: text({ strip: false }),
    })
    .superRefine(
      (form, ctx) => {
        // a field in error holds no string: Django compares the two only when both are given
        if (typeof form.new_password1 === "string" && form.new_password1 !== form.new_password2) {
          ctx.addIssue({
            code: "custom",
            path: ["new_password2"],
            message: "The two password fields didn’t match.",
          });
          return;
        }
        for (const message of validatePassword(form.new_password2, user)) {
          ctx.addIssue({ code: "custom", path: ["new_password2"], message });
        }
      },
      // Django's SetPasswordMixin judges the confirmation whatever the other fields hold
      { when: ({ issues }) => !issues.some((issue) => issue.path?.[0] === "new_password2") },
    );
}
