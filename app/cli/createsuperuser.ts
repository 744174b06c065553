// `npm run createsuperuser`: Django's createsuperuser, same prompts, messages and options:
//   interactive: Username (default: the OS login name), Email address, Password twice, validators
//   with "Bypass password validation and create user anyway? [y/N]: ";
//   --no-input / --noinput with --username, --email and SUPERUSER_* or DJANGO_SUPERUSER_* variables.
// The core takes its streams, arguments and environment so tests drive it directly.
import os from "node:os";
import { parseArgs } from "node:util";
import { Prisma, type PrismaClient } from "../generated/prisma/client.ts";
import { hashPassword, unusablePassword } from "../auth/passwords.ts";
import { validatePassword } from "../auth/password-validation.ts";
import { emailSchema, errorsOf, usernameSchema } from "../forms/superuser.ts";
import { normalizeUsername, stripSpace } from "../forms/fields.ts";
import { normalizeEmail } from "../forms/email.ts";
import { scryptCostSchema } from "../config.ts";
import { isDatabaseUnavailable } from "../db-errors.ts";
import { Cancelled, Prompter } from "./prompter.ts";

export interface CliIO {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Someone can answer the prompts: stdin is a terminal (the tests' streams stand in for one). */
  interactive: boolean;
}

interface Answers {
  username: string;
  email: string;
  /** undefined: the account gets an unusable password, as Django's --no-input without one */
  password: string | undefined;
}

class CommandError extends Error {}

const TAKEN = "Error: That username is already taken.";
/** Django's answer to `--username ""`, with the prompts or without */
const BLANK_ARGUMENT = "Username cannot be blank.";

function fromEnv(env: NodeJS.ProcessEnv, field: string): string | undefined {
  return env[`SUPERUSER_${field}`] ?? env[`DJANGO_SUPERUSER_${field}`];
}

export async function createSuperuser(
  prisma: PrismaClient,
  io: CliIO,
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const say = (line: string) => io.stdout.write(`${line}\n`);
  const complain = (line: string) => io.stderr.write(`${line}\n`);
  try {
    const { values: args } = parseArgs({
      args: argv,
      options: {
        username: { type: "string" },
        email: { type: "string" },
        "no-input": { type: "boolean", default: false },
        noinput: { type: "boolean", default: false },
      },
    });
    const N = scryptCostSchema.safeParse(env.PASSWORD_SCRYPT_N || undefined);
    if (!N.success) throw new CommandError(`PASSWORD_SCRYPT_N: ${N.error.issues[0]?.message}`);
    const noInput = args["no-input"] || args.noinput;
    if (!noInput && !io.interactive) {
      say(
        "Superuser creation skipped due to not running in a TTY. " +
          "You can run `npm run createsuperuser` in your project to create one manually.",
      );
      return 0;
    }
    const isTaken = async (username: string) => (await prisma.user.count({ where: { username } })) > 0;
    const answers = noInput
      ? await fromArguments(args, env, isTaken)
      : await interactively(args, env, io, isTaken, complain);
    await prisma.user.create({
      data: {
        username: answers.username,
        // As Django's create_superuser: the domain part lowercased.
        email: normalizeEmail(answers.email),
        password:
          answers.password === undefined
            ? unusablePassword()
            : await hashPassword(answers.password, { N: N.data }),
        isStaff: true,
        isSuperuser: true,
        isActive: true,
      },
    });
    say("Superuser created successfully.");
    return 0;
  } catch (err) {
    if (err instanceof Cancelled) {
      complain("\nOperation cancelled.");
      return 1;
    }
    // Someone else created the same username between our check and the insert.
    if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002") {
      complain(`CommandError: ${TAKEN}`);
      return 1;
    }
    if (err instanceof CommandError) {
      complain(`CommandError: ${err.message}`);
      return 1;
    }
    // Prisma's P1xxx: the database cannot be reached or refuses the login. One line, not a stack.
    if (
      (err instanceof Prisma.PrismaClientKnownRequestError && /^P1\d{3}$/.test(err.code)) ||
      err instanceof Prisma.PrismaClientInitializationError ||
      isDatabaseUnavailable(err)
    ) {
      const reason = (err as Error).message.trim().split("\n").at(-1);
      complain(`CommandError: cannot use the database at DATABASE_URL: ${reason}`);
      return 1;
    }
    // parseArgs: an unknown option or a missing value is a usage error (exit 2, as argparse).
    if (err instanceof TypeError && String((err as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS")) {
      complain(`usage: createsuperuser [--no-input] [--username USERNAME] [--email EMAIL]\n${err.message}`);
      return 2;
    }
    throw err;
  }
}

/** Format errors (from the schema), or Django's message for a username already in use. */
async function usernameError(
  username: string,
  isTaken: (u: string) => Promise<boolean>,
): Promise<{ message: string; taken: boolean } | undefined> {
  const invalid = errorsOf(usernameSchema.safeParse(username));
  if (invalid) return { message: invalid, taken: false };
  return (await isTaken(username)) ? { message: TAKEN, taken: true } : undefined;
}

/** A typed username's field errors get "Error: " (get_input_data); the taken message has it already. */
function interactiveMessage(problem: { message: string; taken: boolean }): string {
  return problem.taken ? problem.message : `Error: ${problem.message}`;
}

async function fromArguments(
  args: { username?: string; email?: string },
  env: NodeJS.ProcessEnv,
  isTaken: (u: string) => Promise<boolean>,
): Promise<Answers> {
  const given = args.username ?? fromEnv(env, "USERNAME");
  if (given === undefined) throw new CommandError("You must use --username with --noinput.");
  if (given === "") throw new CommandError(BLANK_ARGUMENT);
  const username = normalizeUsername(given);
  const problem = await usernameError(username, isTaken);
  if (problem) throw new CommandError(problem.message);
  // As Django for a REQUIRED_FIELDS entry: `--email or DJANGO_SUPERUSER_EMAIL`, and `if not value`
  // refuses a blank one too, although the prompts accept it (EmailField(blank=True)).
  const email = args.email || fromEnv(env, "EMAIL");
  if (!email) throw new CommandError("You must use --email with --noinput.");
  const badEmail = errorsOf(emailSchema.safeParse(email));
  if (badEmail) throw new CommandError(badEmail);
  // Django runs no password validators here: the operator chose the password on purpose. A variable
  // that is set is the password, even empty (Django: `"DJANGO_SUPERUSER_PASSWORD" in os.environ`).
  return { username, email, password: fromEnv(env, "PASSWORD") };
}

/** Python's getpass.getuser(): the first of these variables that is set and not empty, else the OS account. */
function systemUsername(env: NodeJS.ProcessEnv): string | undefined {
  const fromVariable = ["LOGNAME", "USER", "LNAME", "USERNAME"].map((name) => env[name]).find(Boolean);
  if (fromVariable) return fromVariable;
  try {
    return os.userInfo().username;
  } catch {
    return undefined; // no passwd entry for this uid (some containers)
  }
}

/**
 * Django's get_default_username: the login name in ASCII (accents dropped by NFKD), without spaces,
 * in lower case ("Zoë Smith" offers "zoesmith"), if that is a valid username nobody has taken.
 */
async function defaultUsername(
  env: NodeJS.ProcessEnv,
  isTaken: (u: string) => Promise<boolean>,
): Promise<string | undefined> {
  const name = (systemUsername(env) ?? "")
    .normalize("NFKD")
    .replace(/[^\p{ASCII}]/gu, "")
    .replaceAll(" ", "")
    .toLowerCase();
  return name !== "" && (await usernameError(name, isTaken)) === undefined ? name : undefined;
}

async function interactively(
  args: { username?: string; email?: string },
  env: NodeJS.ProcessEnv,
  io: CliIO,
  isTaken: (u: string) => Promise<boolean>,
  complain: (line: string) => void,
): Promise<Answers> {
  // Django stops at a blank --username; one that is invalid otherwise is reported, then asked for
  if (args.username === "") throw new CommandError(BLANK_ARGUMENT);
  const prompter = new Prompter(io.stdin, io.stdout);
  try {
    let username = args.username === undefined ? undefined : normalizeUsername(args.username);
    if (username !== undefined) {
      const problem = await usernameError(username, isTaken);
      if (problem) {
        // as Django's _validate_username for --username: printed as it is, without "Error: "
        complain(problem.message);
        username = undefined;
      }
    }
    const fallback = username === undefined ? await defaultUsername(env, isTaken) : undefined;
    while (username === undefined) {
      const typed = await prompter.ask(
        fallback ? `Username (leave blank to use '${fallback}'): ` : "Username: ",
      );
      const candidate = typed === "" && fallback ? fallback : normalizeUsername(typed);
      const problem = await usernameError(candidate, isTaken);
      if (problem) complain(interactiveMessage(problem));
      else username = candidate;
    }

    // As Django, an --email given with the prompts is checked, and a bad one stops the command.
    let email = args.email;
    const badEmail = email === undefined ? undefined : errorsOf(emailSchema.safeParse(email));
    if (badEmail) throw new CommandError(badEmail);
    while (email === undefined) {
      // as input() and the model field's clean(): the spaces typed are kept, and refused
      const typed = await prompter.ask("Email address: ");
      const problem = errorsOf(emailSchema.safeParse(typed));
      if (problem) complain(`Error: ${problem}`);
      else email = typed;
    }

    let password: string | undefined;
    while (password === undefined) {
      const first = await prompter.ask("Password: ", { hidden: true });
      const again = await prompter.ask("Password (again): ", { hidden: true });
      if (first !== again) {
        complain("Error: Your passwords didn't match.");
        continue;
      }
      if (stripSpace(first) === "") {
        complain("Error: Blank passwords aren't allowed.");
        continue;
      }
      const problems = validatePassword(first, { username, email });
      if (problems.length > 0) {
        complain(problems.join("\n"));
        const bypass = await prompter.ask("Bypass password validation and create user anyway? [y/N]: ");
        if (bypass.trim().toLowerCase() !== "y") continue;
      }
      password = first;
    }
    return { username, email, password };
  } finally {
    prompter.close();
  }
}
