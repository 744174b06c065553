// Synchroniser-token CSRF protection (csrf-sync; csurf is deprecated). The token lives in the
// session; forms send it as the hidden field `_csrf`, scripts may use the x-csrf-token header.
import type { Request } from "express";
import { csrfSync } from "csrf-sync";

const { csrfSynchronisedProtection, generateToken } = csrfSync({
  getTokenFromRequest: (req) => {
    const field: unknown = req.body?._csrf;
    return typeof field === "string" ? field : req.get("x-csrf-token");
  },
});

/** Refuses POST (and every other unsafe method) without the session's token: 403. */
export const csrfProtection = csrfSynchronisedProtection;

export function csrfToken(req: Request): string {
  return generateToken(req);
}

/** The old token belonged to the session that login replaced (csrf-sync's README). */
export function rotateCsrfToken(req: Request): void {
  generateToken(req, true);
}

export function isCsrfError(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === "EBADCSRFTOKEN";
}
