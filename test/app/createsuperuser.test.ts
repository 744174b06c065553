// `npm run createsuperuser`, driven through its core function with in-memory streams.
import { spawn } from "node:child_process";
import net from "node:net";
import os from "node:os";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { connectDatabase } from "../../app/db.ts";
import { DEFAULT_DB_QUERY_TIMEOUT } from "../../app/config.ts";
import { freePort } from "../support/ports.ts";
import { createSuperuser } from "../../app/cli/createsuperuser.ts";
import { verifyPassword } from "../../app/auth/passwords.ts";
import { waitFor } from "../support/wait.ts";
import { createHarness, createUser, fullwidth, TEST_SCRYPT_N, unique, type Harness } from "./support.ts";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

const ENV = { PASSWORD_SCRYPT_N: String(TEST_SCRYPT_N) };

/** Runs the command with `answers` typed one per line (then end of input), as if at a terminal unless told. */
async function run(argv: string[], env: NodeJS.ProcessEnv = {}, answers: string[] = [], interactive = true) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on("data", (d) => out.push(String(d)));
  stderr.on("data", (d) => err.push(String(d)));
  stdin.end(answers.map((a) => `${a}\n`).join(""));
  const code = await createSuperuser(h.db.prisma, { stdin, stdout, stderr, interactive }, argv, {
    ...ENV,
    ...env,
  });
  return { code, stdout: out.join(""), stderr: err.join("") };
}

const findUser = (username: string) => h.db.prisma.user.findUnique({ where: { username } });

describe("--no-input", () => {
  it("creates an active staff superuser from --username/--email and the password variable", async () => {
    const username = unique("admin");
    const result = await run(["--no-input", "--username", username, "--email", "admin@example.com"], {
      DJANGO_SUPERUSER_PASSWORD: "violet-tugboat-91",
    });
    expect(result).toMatchObject({ code: 0, stdout: "Superuser created successfully.\n", stderr: "" });
    const user = await findUser(username);
    expect(user).toMatchObject({
      email: "admin@example.com",
      isStaff: true,
      isSuperuser: true,
      isActive: true,
    });
    expect(user!.password).toMatch(/^scrypt\$1024\$/);
    expect(await verifyPassword("violet-tugboat-91", user!.password)).toBe(true);
  });

  it("reads SUPERUSER_* (and DJANGO_SUPERUSER_*) variables, with --noinput too", async () => {
    const username = unique("env");
    const result = await run(["--noinput"], {
      SUPERUSER_USERNAME: username,
      DJANGO_SUPERUSER_EMAIL: "env@example.com",
      SUPERUSER_PASSWORD: "1", // no validators in --no-input mode, as in Django
    });
    expect(result.code).toBe(0);
    const user = await findUser(username);
    expect(user?.email).toBe("env@example.com");
    expect(await verifyPassword("1", user!.password)).toBe(true);
  });

  it("gives an account without a password variable an unusable password", async () => {
    const username = unique("nopw");
    expect((await run(["--no-input", "--username", username, "--email", "a@example.com"])).code).toBe(0);
    const user = await findUser(username);
    expect(user!.password.startsWith("!")).toBe(true);
    expect(await verifyPassword("", user!.password, { N: TEST_SCRYPT_N })).toBe(false);
  });

  it("sets an empty DJANGO_SUPERUSER_PASSWORD as the password, as Django (`in os.environ`), not an unusable one", async () => {
    const username = unique("emptypw");
    const result = await run(["--no-input", "--username", username, "--email", "a@example.com"], {
      DJANGO_SUPERUSER_PASSWORD: "",
    });
    expect(result.code).toBe(0);
    const user = await findUser(username);
    expect(user!.password.startsWith("!")).toBe(false);
    expect(await verifyPassword("", user!.password, { N: TEST_SCRYPT_N })).toBe(true);
  });

  it("needs the email address, as Django's REQUIRED_FIELDS (`if not value`): missing or blank", async () => {
    for (const [argv, env] of [
      [[], {}],
      [["--email", ""], {}],
      [[], { DJANGO_SUPERUSER_EMAIL: "" }],
      [[], { SUPERUSER_EMAIL: "" }],
    ] as const) {
      const username = unique("nomail");
      const result = await run(["--no-input", "--username", username, ...argv], env);
      expect(result, JSON.stringify([argv, env])).toEqual({
        code: 1,
        stdout: "",
        stderr: "CommandError: You must use --email with --noinput.\n",
      });
      expect(await findUser(username)).toBeNull();
    }
    // Django reads `--email or DJANGO_SUPERUSER_EMAIL`: a blank option gives way to the variable.
    const username = unique("envmail");
    expect(
      (await run(["--no-input", "--username", username, "--email", ""], { SUPERUSER_EMAIL: "e@example.com" }))
        .code,
    ).toBe(0);
    expect((await findUser(username))?.email).toBe("e@example.com");
  });

  it("fails clearly: no username, blank, invalid, taken, bad email", async () => {
    const taken = await createUser(h);
    const cases: [string[], string][] = [
      [["--no-input"], "CommandError: You must use --username with --noinput.\n"],
      [["--no-input", "--username", ""], "CommandError: Username cannot be blank.\n"],
      [
        ["--no-input", "--username", "two words"],
        "CommandError: Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.\n",
      ],
      [
        // every message of the field's validators, joined as Django's "; ".join(e.messages)
        ["--no-input", "--username", `${"a".repeat(150)}!`],
        "CommandError: Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.; " +
          "Ensure this value has at most 150 characters (it has 151).\n",
      ],
      [
        ["--no-input", "--username", taken.username],
        "CommandError: Error: That username is already taken.\n",
      ],
      [
        ["--no-input", "--username", unique("x"), "--email", "nope"],
        "CommandError: Enter a valid email address.\n",
      ],
    ];
    for (const [argv, message] of cases) {
      const result = await run(argv);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(message);
      expect(result.stdout).toBe("");
    }
  });

  it("rejects unknown options with a usage message (exit 2)", async () => {
    const result = await run(["--no-input", "--colour", "red"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^usage: createsuperuser/);
  });
});

describe("email addresses", () => {
  it("accepts what Django's EmailValidator accepts and stores the domain lowercased (normalize_email)", async () => {
    const cases: [string, string][] = [
      ["root@localhost", "root@localhost"],
      ["user@bücher.de", "user@bücher.de"],
      ["user@[127.0.0.1]", "user@[127.0.0.1]"],
      ["user@[::1]", "user@[::1]"],
      ['"john..doe"@example.com', '"john..doe"@example.com'],
      ["Jane.Doe@Example.COM", "Jane.Doe@example.com"],
    ];
    for (const [typed, stored] of cases) {
      const username = unique("mail");
      const result = await run(["--no-input", "--username", username, "--email", typed]);
      expect(result, typed).toMatchObject({ code: 0, stderr: "" });
      expect((await findUser(username))?.email).toBe(stored);
    }
  });

  it("refuses what Django's EmailValidator refuses", async () => {
    for (const email of ["nope", "a@b", "user@-bad.com", "user@[999.1.1.1]", "user@[not-ip]", "two@@x.com"]) {
      const result = await run(["--no-input", "--username", unique("mail"), "--email", email]);
      expect(result.stderr, email).toBe("CommandError: Enter a valid email address.\n");
    }
  });
});

describe("Unicode usernames", () => {
  it("are normalised with NFKC, as Django's normalize_username: 'ａｄｍｉｎ' is 'admin'", async () => {
    const taken = await createUser(h);
    const refused = await run([
      "--no-input",
      "--username",
      fullwidth(taken.username),
      "--email",
      "a@example.com",
    ]);
    expect(refused.stderr).toBe("CommandError: Error: That username is already taken.\n");
    const flag = await run(["--username", fullwidth(taken.username)], {}, [
      fullwidth(unique("typed")),
      "",
      "violet-tugboat-91",
      "violet-tugboat-91",
    ]);
    expect(flag.stderr).toBe("Error: That username is already taken.\n");
    expect(flag.code).toBe(0);
    const created = unique("wide");
    expect(
      (await run(["--no-input", "--username", fullwidth(created), "--email", "a@example.com"])).code,
    ).toBe(0);
    expect(await findUser(created)).not.toBeNull();
    expect(await findUser(fullwidth(created))).toBeNull();
  });
});

describe("interactive", () => {
  it("asks Django's questions and creates the superuser", async () => {
    const username = unique("typed");
    const result = await run([], {}, [
      username,
      "typed@example.com",
      "violet-tugboat-91",
      "violet-tugboat-91",
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^Username( \(leave blank to use '[^']+'\))?: Email address: Password: \nPassword \(again\): \n/,
    );
    expect(result.stdout).toContain("Superuser created successfully.");
    expect(result.stdout).not.toContain("violet-tugboat-91"); // passwords are never echoed
    expect(await findUser(username)).toMatchObject({ email: "typed@example.com", isSuperuser: true });
  });

  it("offers the OS login name as the default username", async () => {
    const login = os.userInfo().username;
    const result = await run([], {}, ["", "", "violet-tugboat-91", "violet-tugboat-91"]);
    expect(result.stdout).toContain(`Username (leave blank to use '${login}'): `);
    expect(result.code).toBe(0);
    expect(await findUser(login)).not.toBeNull();
    // Now taken: no longer offered.
    const again = await run([], {}, [unique("other"), "", "violet-tugboat-91", "violet-tugboat-91"]);
    expect(again.stdout).toMatch(/^Username: /);
  });

  it("offers the login name as Django's get_default_username: LOGNAME, USER, LNAME, USERNAME first, in ASCII lowercase", async () => {
    const result = await run([], { LOGNAME: "", USER: "Zoë Ŝmith", USERNAME: "other" }, [
      "",
      "",
      "violet-tugboat-91",
      "violet-tugboat-91",
    ]);
    expect(result.stdout).toMatch(/^Username \(leave blank to use 'zoesmith'\): /);
    expect(result.code).toBe(0);
    expect(await findUser("zoesmith")).not.toBeNull();
    // a name that is no valid username even so is not offered
    const invalid = await run([], { LOGNAME: "o'brien" }, [
      unique("typed"),
      "",
      "violet-tugboat-91",
      "violet-tugboat-91",
    ]);
    expect(invalid.stdout).toMatch(/^Username: /);
  });

  it("stops at a blank --username with Django's CommandError, before any prompt", async () => {
    const result = await run(["--username", ""], {}, [
      "never-read",
      "",
      "violet-tugboat-91",
      "violet-tugboat-91",
    ]);
    expect(result).toEqual({ code: 1, stdout: "", stderr: "CommandError: Username cannot be blank.\n" });
    expect(await findUser("never-read")).toBeNull();
  });

  it("repeats questions after errors: taken username, bad email, mismatch, blank password", async () => {
    const taken = await createUser(h);
    const username = unique("retry");
    const result = await run([], {}, [
      taken.username,
      "bad name!",
      username,
      "not-an-email",
      // input() keeps the spaces, and the model field's clean() does not strip them
      " retry@example.com",
      "",
      "violet-tugboat-91",
      "violet-tugboat-92",
      // blank to Python's strip(), which Django's check uses
      " \u001f",
      " \u001f",
      "violet-tugboat-91",
      "violet-tugboat-91",
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr.split("\n")).toEqual([
      "Error: That username is already taken.",
      "Error: Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
      "Error: Enter a valid email address.",
      "Error: Enter a valid email address.",
      "Error: Your passwords didn't match.",
      "Error: Blank passwords aren't allowed.",
      "",
    ]);
    expect(await findUser(username)).toMatchObject({ email: "" });
  });

  it("prints an invalid --username without 'Error: ', as Django's _validate_username, then asks", async () => {
    const username = unique("argname");
    const result = await run(["--username", "bad name!"], {}, [
      username,
      "",
      "violet-tugboat-91",
      "violet-tugboat-91",
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(
      "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.\n",
    );
    expect(await findUser(username)).not.toBeNull();
  });

  it("checks an --email given with the prompts and stops at a bad one, as Django", async () => {
    const tooLong = `${"a".repeat(243)}@example.com`; // 255 characters: the column holds 254
    const cases = [
      ["not-an-email", "Enter a valid email address."],
      // EmailValidator accepts up to 320 characters; the model field's max_length is 254
      [tooLong, "Ensure this value has at most 254 characters (it has 255)."],
      [
        `.${tooLong}`,
        "Enter a valid email address.; Ensure this value has at most 254 characters (it has 256).",
      ],
    ];
    for (const [email, message] of cases) {
      const username = unique("mail");
      const result = await run(["--username", username, "--email", email!], {}, [
        "violet-tugboat-91",
        "violet-tugboat-91",
      ]);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`CommandError: ${message}\n`);
      expect(await findUser(username)).toBeNull();
    }
  });

  it("runs the password validators and asks before bypassing them", async () => {
    // Letters only: with the process id's digits in the name, "1234" could be "too similar" to it.
    const refused = unique("weak").replace(/[0-9]/g, (d) => "abcdefghij"[Number(d)]!);
    const result = await run([], {}, [
      refused,
      "",
      "1234",
      "1234",
      "n",
      "violet-tugboat-91",
      "violet-tugboat-91",
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(
      [
        "This password is too short. It must contain at least 8 characters.",
        "This password is too common.",
        "This password is entirely numeric.",
        "",
      ].join("\n"),
    );
    expect(result.stdout).toContain("Bypass password validation and create user anyway? [y/N]: ");
    expect(await verifyPassword("violet-tugboat-91", (await findUser(refused))!.password)).toBe(true);

    const bypassed = unique("bypass");
    const forced = await run([], {}, [bypassed, "", bypassed, bypassed, "y"]);
    expect(forced.stderr).toBe("The password is too similar to the username.\n");
    expect(forced.code).toBe(0);
    expect(await verifyPassword(bypassed, (await findUser(bypassed))!.password)).toBe(true);
  });

  it("stops with 'Operation cancelled.' when the input ends", async () => {
    const username = unique("cancel");
    const result = await run([], {}, [username, ""]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("\nOperation cancelled.\n");
    expect(await findUser(username)).toBeNull();
  });
});

describe("where it cannot run", () => {
  it("skips without a terminal, as Django, unless --no-input", async () => {
    const username = unique("notty");
    const result = await run([], {}, [username], false);
    expect(result).toEqual({
      code: 0,
      stdout:
        "Superuser creation skipped due to not running in a TTY. " +
        "You can run `npm run createsuperuser` in your project to create one manually.\n",
      stderr: "",
    });
    expect(await findUser(username)).toBeNull();
  });

  it.each([
    ["a wrong password", (url: URL) => (url.password = "wrong"), /Authentication failed/],
    [
      "nothing listening",
      (url: URL, port: number) => (url.port = String(port)),
      /reach|connect|ECONNREFUSED/i,
    ],
  ])("says in one line that the database cannot be used: %s", async (_what, spoil, reason) => {
    const url = new URL(inject("pgAppUrl"));
    spoil(url, await freePort());
    const db = connectDatabase({
      databaseUrl: url.href,
      databaseSchema: "public",
      dbPoolMax: 1,
      dbQueryTimeout: DEFAULT_DB_QUERY_TIMEOUT,
    });
    try {
      const stderr: string[] = [];
      const io = {
        stdin: new PassThrough(),
        stdout: new PassThrough(),
        stderr: new PassThrough(),
        interactive: true,
      };
      io.stderr.on("data", (d) => stderr.push(String(d)));
      const code = await createSuperuser(
        db.prisma,
        io,
        ["--no-input", "--username", unique("down"), "--email", "a@example.com"],
        ENV,
      );
      expect(code).toBe(1);
      const text = stderr.join("");
      expect(text.trim().split("\n")).toHaveLength(1);
      expect(text).toMatch(/^CommandError: cannot use the database at DATABASE_URL: /);
      expect(text).toMatch(reason);
    } finally {
      await db.close();
    }
  });
});

describe("the program", () => {
  it("stops with 'Operation cancelled.' and exit 1 on SIGINT outside a prompt, as Django's KeyboardInterrupt", async () => {
    // a database that takes the connection and never answers: the command waits on it
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as net.AddressInfo;
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "scripts/createsuperuser.ts", "--noinput", "--username", unique("sigint")],
      {
        env: { ...process.env, ...ENV, DATABASE_URL: `postgresql://u:p@127.0.0.1:${port}/app` },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await waitFor(() => sockets.length > 0, "the command to reach the database", 15_000);
      child.kill("SIGINT");
      expect(await exited).toBe(1);
      expect(stderr).toBe("\nOperation cancelled.\n");
    } finally {
      child.kill("SIGKILL");
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});
