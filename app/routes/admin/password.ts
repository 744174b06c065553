// "Change password" from the admin's user tools, as Django's PasswordChangeView.
import type { Router, Response } from "express";
import { caseSensitiveRouter } from "../router.ts";
import type { AdminDeps } from "./index.ts";
import { hashPassword, verifyPassword } from "../../auth/passwords.ts";
import { passwordChangeForm } from "../../forms/auth.ts";
import { addError, parseForm, type FieldErrors } from "../../forms/fields.ts";
import { transaction } from "../../db-errors.ts";

const WRONG_OLD_PASSWORD = "Your old password was entered incorrectly. Please enter it again.";

export function passwordRoutes({ prisma, auth, scryptN }: AdminDeps): Router {
  const router = caseSensitiveRouter({ strict: true });
  const render = (res: Response, errors: FieldErrors = {}) =>
    res.render("admin/password-change", { title: "Password change", errors });

  router.get("/password_change/", (_req, res) => render(res));

  router.post("/password_change/", async (req, res) => {
    const user = req.user!;
    const form = parseForm(passwordChangeForm(user), req.body);
    const oldPassword = form.values.old_password ?? "";
    let errors = form.ok ? {} : form.errors;
    if (oldPassword && !(await verifyPassword(oldPassword, user.password))) {
      errors = addError(errors, "old_password", WRONG_OLD_PASSWORD);
    }
    // Passwords are never sent back to the browser, so the form is re-rendered empty (200, as Django).
    if (!form.ok || Object.keys(errors).length > 0) return render(res, errors);
    const password = await hashPassword(form.data.new_password1, { N: scryptN });
    // In a transaction of its own, a connection lost before COMMIT surely changed nothing, and one
    // lost during COMMIT is reported as such (CommitOutcomeUnknown) rather than as "nothing changed".
    const updated = await transaction(prisma, (tx) =>
      tx.user.update({ where: { id: user.id }, data: { password } }),
    );
    await auth.updateSessionAuthHash(req, updated);
    res.redirect(302, "/admin/password_change/done/");
  });

  router.get("/password_change/done/", (_req, res) => {
    res.render("admin/password-change-done", { title: "Password change successful" });
  });

  return router;
}
