import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "./errors.ts";
import { classifySecret, formatUserlistLine, parseUserlist, readUserlist } from "./userlist.ts";

const SCRAM =
  "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$dGVzdHN0b3JlZGtleXRlc3RzdG9yZWRrZXk=:dGVzdHNlcnZlcmtleXRlc3RzZXJ2ZXJrZXk=";

describe("parseUserlist", () => {
  it("reads the three kinds of secret, comments and blank lines", () => {
    const users = parseUserlist(
      [
        "; comment",
        "",
        `"alice" "${SCRAM}"`,
        '  "admin" "md545f2603610af569b6155c45067268c6b"  ',
        '"bob" "s3cret" trailing fields are ignored',
      ].join("\n"),
      "userlist.txt",
    );
    expect([...users.values()]).toEqual([
      { name: "alice", kind: "scram", secret: SCRAM },
      { name: "admin", kind: "md5", secret: "md545f2603610af569b6155c45067268c6b" },
      { name: "bob", kind: "plain", secret: "s3cret" },
    ]);
  });

  it('unescapes "" inside quotes, also in user names', () => {
    const users = parseUserlist('"o""neil" "say ""hi"""\r\n', "f");
    expect(users.get('o"neil')).toEqual({ name: 'o"neil', kind: "plain", secret: 'say "hi"' });
  });

  it("keeps the last line of a user listed twice", () => {
    expect(parseUserlist('"a" "one"\n"a" "two"', "f").get("a")?.secret).toBe("two");
  });

  it("names file and line of a broken line, without echoing it", () => {
    const broken = () => parseUserlist('"ok" "x"\nalice secretpw', "/etc/userlist.txt");
    expect(broken).toThrow(ConfigError);
    expect(broken).toThrow(/^\/etc\/userlist\.txt:2: expected "username" "password"/);
    expect(broken).not.toThrow(/secretpw/);
  });

  it("refuses a line that is not UTF-8, whose bad bytes would all read as one character", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "userlist-")), "userlist.txt");
    fs.writeFileSync(file, Buffer.from('; caf\xe9\n"ok" "x"\n"latin" "pass\xe9"\n', "latin1"));
    expect(() => readUserlist(file)).toThrow(new ConfigError(`${file}:3: not valid UTF-8`));
  });

  it("reads a file and reports a missing one", () => {
    const users = readUserlist(path.join(import.meta.dirname, "fixtures/userlist.txt"));
    expect([...users.values()].map((u) => [u.name, u.kind])).toEqual([
      ["postgres", "scram"],
      ["stats", "md5"],
      ["monitor", "plain"],
    ]);
    expect(() => readUserlist("/nonexistent/userlist.txt")).toThrow(
      "auth_file: cannot read /nonexistent/userlist.txt: ENOENT",
    );
  });
});

describe("classifySecret", () => {
  it.each([
    ["md545f2603610af569b6155c45067268c6b", "md5"],
    [SCRAM, "scram"],
    ["md5-not-a-hash", "plain"],
    ["md545f2603610af569b6155c45067268c6b0", "plain"],
    ["", "plain"],
  ])("%s is %s", (secret, kind) => {
    expect(classifySecret(secret)).toBe(kind);
  });
});

describe("formatUserlistLine", () => {
  it("quotes and round-trips", () => {
    const line = formatUserlistLine('o"neil', 'pa"ss');
    expect(line).toBe('"o""neil" "pa""ss"');
    expect(parseUserlist(line, "f").get('o"neil')?.secret).toBe('pa"ss');
  });
});
