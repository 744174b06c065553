// Django's four default password validators (AUTH_PASSWORD_VALIDATORS of a new project), with
// Django's messages. Used by createsuperuser and the admin's password change form.

const MIN_LENGTH = 8;
const MAX_SIMILARITY = 0.7;

// A short excerpt of the lists Django's CommonPasswordValidator ships (it has 20,000 entries).
const COMMON_PASSWORDS = new Set(
  `123456 123456789 12345678 1234 password qwerty123 qwerty1 111111 12345 secret 123123 1234567890 1234567
  000000 qwerty abc123 password1 iloveyou 11111111 dragon monkey 123321 654321 666666 7777777 121212
  123qwe 1q2w3e4r 1q2w3e4r5t zxcvbnm asdfghjk qwertyuiop letmein welcome welcome1 admin admin123
  administrator passw0rd p@ssw0rd password123 password12 football baseball basketball superman batman
  trustno1 sunshine princess shadow master michael jennifer jordan23 hunter2 starwars whatever
  freedom charlie killer hello123 loveme lovely flower pokemon computer internet samsung google
  changeme default postgres root toor django postgresql pgbouncer mustang access ninja azerty
  solo qazwsx 1qaz2wsx zaq12wsx aa123456 abcd1234 1234qwer qwer1234 q1w2e3r4 a1b2c3d4 987654321
  88888888 99999999 12341234 11223344 123654789 159753 asdasd asdfgh asdf1234 iloveyou1 adminadmin
  passpass testtest test1234 guest guest123 summer2024 winter2024 spring2025 autumn2025 yellow
  purple orange banana cookie cheese chocolate pepper ginger maggie buster tigger daniel thomas`.split(/\s+/),
);

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

/** Django's messages for every rule the password breaks; an empty list means it is acceptable. */
export function validatePassword(password: string, user: UserAttributes = {}): string[] {
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
  if (COMMON_PASSWORDS.has(password.toLowerCase().trim())) errors.push("This password is too common.");
  if (/^\d+$/.test(password)) errors.push("This password is entirely numeric.");
  return errors;
}
