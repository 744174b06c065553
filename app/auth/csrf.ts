// Synchroniser-token CSRF protection (csrf-sync; csurf is deprecated). The token lives in the
// session; forms send it as the hidden field `_csrf`, scripts may use the x-csrf-token header.
import type { Request } from "express";
import { csrfSync } from "csrf-sync";

const { csrfSynchronisedProtection, generateToken, getTokenFromState, storeTokenInState } = csrfSync({
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

/**
 * Runs `renew` (which replaces the session) and puts the token back into the new session: Django's
 * update_session_auth_hash cycles the session key but keeps the CSRF token, so the other forms the
 * browser has open still send a valid one.
 */
export async function keepingCsrfToken(req: Request, renew: () => Promise<void>): Promise<void> {
  const token = getTokenFromState(req);
  await renew();
  if (token) storeTokenInState(req, token);
}

export function isCsrfError(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === "EBADCSRFTOKEN";
}
