// Form fields that behave like Django's: values are stripped, a blank required field says "This field
// is required.", length is counted in characters (as PostgreSQL's VARCHAR does), and every message
// is one a person understands. A form that fails keeps the user's input for re-display.
import { z } from "zod";

export const REQUIRED = "This field is required.";

/**
 * Python's whitespace (str.isspace), which str.strip() removes. JavaScript's trim() differs: it
 * keeps the information separators U+001C-U+001F and NEL (U+0085), so a title of nothing else would
 * pass as not blank, and it removes a byte order mark (U+FEFF), which Python keeps.
 */
export const PY_SPACE = String.raw`[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]`;
const PY_STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, "g");

/** Python's str.strip(), as Django applies it to form input. */
export function stripSpace(value: string): string {
  return value.replace(PY_STRIP, "");
}

export interface TextOptions {
  max?: number;
  required?: boolean;
  /** Django strips CharField input but never passwords. */
  strip?: boolean;
  /** Unicode normalisation applied before the checks, as a username field (normalizeUsername). */
  normalize?: (value: string) => string;
}

/**
 * Django's AbstractBaseUser.normalize_username (and the login form's UsernameField): NFKC, so that
 * a name typed in fullwidth letters ("ａｄｍｉｎ") is the same user as "admin", never a second one.
 */
export function normalizeUsername(name: string): string {
  return name.normalize("NFKC");
}

/** zod 4 reports an absent key as "expected nonoptional" unless the schema says it may be absent. */
export const field = () => z.unknown().optional();

export function text({ max, required = true, strip = true, normalize }: TextOptions = {}) {
  return field().transform((raw, ctx): string => {
    // A field sent twice is one value by now, its last (query-dict.ts), as in Django.
    const value = raw ?? "";
    if (typeof value !== "string") {
      ctx.addIssue({ code: "custom", message: "Enter a valid value." });
      return z.NEVER;
    }
    const stripped = strip ? stripSpace(value) : value;
    const cleaned = normalize ? normalize(stripped) : stripped;
    if (required && cleaned === "") {
      ctx.addIssue({ code: "custom", message: REQUIRED });
      return z.NEVER;
    }
    // PostgreSQL cannot store NUL in text: without this check the insert would fail with a 500.
    if (cleaned.includes("\0")) {
      ctx.addIssue({ code: "custom", message: "Null characters are not allowed." });
      return z.NEVER;
    }
    const length = [...cleaned].length;
    if (max !== undefined && length > max) {
      ctx.addIssue({
        code: "custom",
        message: `Ensure this value has at most ${max} characters (it has ${length}).`,
      });
      return z.NEVER;
    }
    return cleaned;
  });
}

export type FieldErrors = Record<string, string[]>;

export type FormResult<T> =
  | { ok: true; data: T; values: Record<string, string> }
  | { ok: false; errors: FieldErrors; values: Record<string, string> };

/** The raw input of each field, for re-displaying a form exactly as the user typed it. */
function rawValues(shape: Record<string, unknown>, body: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.keys(shape).map((key) => {
      const value = body[key];
      return [key, typeof value === "string" ? value : ""];
    }),
  );
}

/** Errors of the form as a whole (not tied to one field) live under Django's "__all__" key. */
export const NON_FIELD = "__all__";

export function parseForm<S extends z.ZodObject>(schema: S, body: unknown): FormResult<z.output<S>> {
  const input = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
  const values = rawValues(schema.shape, input);
  const parsed = schema.safeParse(input);
  if (parsed.success) return { ok: true, data: parsed.data, values };
  const errors: FieldErrors = {};
  for (const issue of parsed.error.issues) {
    const key = issue.path.length > 0 ? String(issue.path[0]) : NON_FIELD;
    (errors[key] ??= []).push(issue.message);
  }
  return { ok: false, errors, values };
}

/** Adds an error found after parsing (a wrong password, a stale form) to a form's errors. */
export function addError(errors: FieldErrors, field: string, message: string): FieldErrors {
  return { ...errors, [field]: [...(errors[field] ?? []), message] };
}
