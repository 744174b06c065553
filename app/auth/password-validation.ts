// Django's four default password validators (AUTH_PASSWORD_VALIDATORS of a new project), with
// Django's messages. Used by createsuperuser and the admin's password change form.
import { dictionary } from "@zxcvbn-ts/language-common";
import { stripSpace } from "../forms/fields.ts";

const MIN_LENGTH = 8;
const MAX_SIMILARITY = 0.7;

/**
 * Django's CommonPasswordValidator refuses the 20,000 most common passwords of a leaked-password
 * list. zxcvbn-ts's common list (about 49,000 from similar sources, already lowercase) covers
 * Django's and is maintained as a package; lowercased once more here, since Django compares
 * password.lower().strip() with a lowercased list.
 */
const COMMON_PASSWORDS = new Set(dictionary["passwords-common"].map((word) => word.toLowerCase()));

export interface UserAttributes {
  username?: string;
  email?: string;
}

/** Characters of `a` also in `b`, counted with multiplicity: Python's SequenceMatcher.quick_ratio(). */
function quickRatio(a: string, b: string): number {
  const counts = new Map<string, number>();
  for (const ch of b) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let matches = 0;
  for (const ch of a) {
    const left = counts.get(ch) ?? 0;
    if (left > 0) {
      matches += 1;
      counts.set(ch, left - 1);
    }
  }
  const total = [...a].length + [...b].length;
  return total === 0 ? 1 : (2 * matches) / total;
}

function tooSimilar(password: string, value: string): boolean {
  const pw = password.toLowerCase();
  const whole = value.toLowerCase();
  const parts = [...whole.split(/[^\p{L}\p{N}_]+/u), whole].filter(Boolean);
  return parts.some((part) => {
    // Django skips parts so short next to the password that they cannot make it guessable.
    const pwLength = [...pw].length;
    const partLength = [...part].length;
    if (pwLength >= 10 * partLength && partLength < (MAX_SIMILARITY / 2) * pwLength) return false;
    return quickRatio(pw, part) >= MAX_SIMILARITY;
  });
}

/**
 * Django's messages for every rule the password breaks; an empty list means it is acceptable.
 * The rules judge the password as hashPassword stores it (NFKC): "ｍｉｃｈｅｌｌｅ", typed with an input
 * method left in full-width mode, is stored as "michelle", which then logs in too.
 */
export function validatePassword(typed: string, user: UserAttributes = {}): string[] {
  const password = typed.normalize("NFKC");
  const errors: string[] = [];
  const attributes: [string | undefined, string][] = [
    [user.username, "username"],
    [user.email, "email address"],
  ];
  for (const [value, name] of attributes) {
    if (value && tooSimilar(password, value)) {
      errors.push(`The password is too similar to the ${name}.`);
      break;
    }
  }
  if ([...password].length < MIN_LENGTH) {
    errors.push(`This password is too short. It must contain at least ${MIN_LENGTH} characters.`);
  }
  if (COMMON_PASSWORDS.has(stripSpace(password.toLowerCase()))) errors.push("This password is too common.");
  // Python's str.isdigit(), which Django uses, takes any script's digits, not only 0-9.
  if (/^\p{Nd}+$/u.test(password)) errors.push("This password is entirely numeric.");
  return errors;
}
