import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "./errors.ts";
import { matchHba, parseHba, type HbaConnection } from "./hba.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-hba-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const FILE = path.join(dir, "hba.conf");

const tcp = (over: Partial<HbaConnection> = {}): HbaConnection => ({
  unixSocket: false,
  tls: false,
  address: "127.0.0.1",
  database: "app",
  user: "alice",
  ...over,
});

/** The file:line of the rule a connection gets, or "none". */
function lineFor(text: string, c: HbaConnection): string {
  const rule = matchHba(parseHba(text, FILE), c);
  return rule === undefined ? "none" : `${rule.where.slice(FILE.length + 1)} ${rule.method}`;
}

describe("auth_hba_file", () => {
  it("takes the first line that matches the record type, database, user and address", () => {
    fs.writeFileSync(path.join(dir, "admins.txt"), "# admins\nroot, carol\n dave\n");
    const text = [
      "# TYPE  DATABASE   USER          ADDRESS            METHOD",
      "local   all        all                              peer",
      "hostssl app        all           0.0.0.0/0          cert",
      'host    app        bob,"all"     127.0.0.1/32       reject',
      "host    sameuser   all           127.0.0.0 255.0.0.0 scram-sha-256",
      "host    pgbouncer  @admins.txt   ::1/128            password",
      "hostnossl app,other all          10.1.0.0/16        trust  # a comment",
      "host    all        all           all                md5",
    ].join("\n");
    expect(lineFor(text, tcp({ unixSocket: true, address: undefined }))).toBe("2 peer");
    expect(lineFor(text, tcp({ tls: true }))).toBe("3 cert");
    expect(lineFor(text, tcp({ user: "bob" }))).toBe("4 reject");
    // a quoted keyword is a name: the user called "all"
    expect(lineFor(text, tcp({ user: "all" }))).toBe("4 reject");
    expect(lineFor(text, tcp({ database: "alice" }))).toBe("5 scram-sha-256");
    expect(lineFor(text, tcp({ database: "alice", address: "::ffff:127.9.9.9" }))).toBe("5 scram-sha-256");
    expect(lineFor(text, tcp({ database: "alice", address: "128.0.0.1" }))).toBe("8 md5");
    expect(lineFor(text, tcp({ database: "pgbouncer", user: "carol", address: "::1" }))).toBe("6 password");
    expect(lineFor(text, tcp({ database: "pgbouncer", user: "carol" }))).toBe("8 md5");
    expect(lineFor(text, tcp({ database: "other", address: "10.1.200.3" }))).toBe("7 trust");
    expect(lineFor(text, tcp({ database: "other", address: "10.1.200.3", tls: true }))).toBe("8 md5");
  });

  it("matches a line against clients of its own address family only", () => {
    const text = "host all all ::/0 trust\nhost all all ::ffff:0:0/96 trust\nhost all all 0.0.0.0/0 md5\n";
    expect(lineFor(text, tcp({ address: "127.0.0.1" }))).toBe("3 md5");
    expect(lineFor(text, tcp({ address: "::ffff:127.0.0.1" }))).toBe("3 md5");
    expect(lineFor(text, tcp({ address: "::1" }))).toBe("1 trust");
  });

  it("reads a # inside quotes as part of the name, and comments at the end of CRLF lines", () => {
    const text = [
      "# TYPE DATABASE USER ADDRESS METHOD",
      'host "db#1" all 127.0.0.1/32 reject # the odd one',
      "",
    ];
    expect(lineFor(text.join("\r\n"), tcp({ database: "db#1" }))).toBe("2 reject");
    expect(lineFor(text.join("\r\n"), tcp({ database: "db" }))).toBe("none");
  });

  it("reads @file names as PostgreSQL and PgBouncer do: quoted, keywords, nested @files", () => {
    fs.mkdirSync(path.join(dir, "lists"), { recursive: true });
    // relative to the including file's folder; a quoted name keeps its case and its comma
    fs.writeFileSync(path.join(dir, "lists", "team.txt"), '"Alice", "b,c" # the admins\r\n@more.txt\n');
    fs.writeFileSync(path.join(dir, "lists", "more.txt"), "carol\n");
    fs.writeFileSync(path.join(dir, "lists", "everyone.txt"), "all\n");
    const text =
      "host app @lists/team.txt 127.0.0.1/32 reject\nhost @lists/everyone.txt bob 127.0.0.1/32 trust\n";
    expect(lineFor(text, tcp({ user: "Alice" }))).toBe("1 reject");
    expect(lineFor(text, tcp({ user: "b,c" }))).toBe("1 reject");
    expect(lineFor(text, tcp({ user: "carol" }))).toBe("1 reject");
    expect(lineFor(text, tcp({ user: '"Alice",' }))).toBe("none");
    expect(lineFor(text, tcp({ user: "bob", database: "any" }))).toBe("2 trust");
  });

  it("takes pg_hba.conf's default replication lines, which match no pooler connection, with a warning", () => {
    const warnings: string[] = [];
    const text = "local replication all trust\nhost replication,app all 127.0.0.1/32 md5\n";
    const rules = parseHba(text, FILE, warnings);
    expect(matchHba(rules, tcp({ unixSocket: true, address: undefined, database: "replication" }))).toBe(
      undefined,
    );
    expect(matchHba(rules, tcp())?.where).toBe(`${FILE}:2`);
    expect(warnings).toEqual([
      `${FILE}:1: database replication: the pooler takes no replication connections`,
      `${FILE}:2: database replication: the pooler takes no replication connections`,
    ]);
  });

  it("reads the user column's sameuser and replication as keywords, as PgBouncer 1.18 (measured)", () => {
    // PgBouncer 1.18: alice@alice asked for a password, alice@bob and sameuser@bob login rejected;
    // the replication line skipped with a warning ("replication is not supported")
    const warnings: string[] = [];
    const text = "host all sameuser 127.0.0.1/32 md5\nhost all replication,bob 127.0.0.1/32 password\n";
    const rules = parseHba(text, FILE, warnings);
    expect(matchHba(rules, tcp({ user: "alice", database: "alice" }))?.where).toBe(`${FILE}:1`);
    expect(matchHba(rules, tcp({ user: "alice", database: "bob" }))).toBe(undefined);
    expect(matchHba(rules, tcp({ user: "sameuser", database: "bob" }))).toBe(undefined);
    expect(matchHba(rules, tcp({ user: "replication", database: "x" }))).toBe(undefined);
    // the whole line, bob too: PgBouncer 1.18 never reads it
    expect(matchHba(rules, tcp({ user: "bob", database: "x" }))).toBe(undefined);
    expect(warnings).toEqual([`${FILE}:2: user replication: the pooler takes no replication connections`]);
  });

  it("takes an IPv6 address with a written-out mask, as PostgreSQL and PgBouncer", () => {
    const text = [
      "host all all ::1 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff md5",
      "host all all fd00:: ffff:ff00:: trust",
      "host all all ::ffff:0:0 ffff:ffff:ffff:ffff:ffff:ffff:: password",
      "host all all 2001:db8:: ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.0 reject",
    ].join("\n");
    expect(lineFor(text, tcp({ address: "::1" }))).toBe("1 md5");
    expect(lineFor(text, tcp({ address: "::2" }))).toBe("none");
    expect(lineFor(text, tcp({ address: "fd00:ab::7" }))).toBe("2 trust");
    expect(lineFor(text, tcp({ address: "fd01::7" }))).toBe("none");
    expect(lineFor(text, tcp({ address: "2001:db8::ff" }))).toBe("4 reject");
    expect(lineFor(text, tcp({ address: "2001:db8::1:ff" }))).toBe("none");
    // still a line of its own family: an IPv4 client is not an IPv4-mapped IPv6 one
    expect(lineFor(text, tcp({ address: "127.0.0.1" }))).toBe("none");
  });

  it("applies a mask bit by bit, contiguous or not, as PostgreSQL and PgBouncer 1.18", () => {
    const text = [
      "host all all 10.0.7.0 255.0.255.0 md5",
      "host all all 10.9.0.0/17 trust",
      "host all all fd00::1 ffff::ffff password",
    ].join("\n");
    expect(lineFor(text, tcp({ address: "10.200.7.99" }))).toBe("1 md5");
    expect(lineFor(text, tcp({ address: "::ffff:10.1.7.1" }))).toBe("1 md5");
    expect(lineFor(text, tcp({ address: "10.200.8.99" }))).toBe("none");
    expect(lineFor(text, tcp({ address: "11.200.7.99" }))).toBe("none");
    expect(lineFor(text, tcp({ address: "10.9.127.1" }))).toBe("2 trust");
    expect(lineFor(text, tcp({ address: "10.9.128.1" }))).toBe("none");
    expect(lineFor(text, tcp({ address: "fd00:1:2:3::1" }))).toBe("3 password");
    expect(lineFor(text, tcp({ address: "fd00:1:2:3::1%eth0" }))).toBe("3 password");
    expect(lineFor(text, tcp({ address: "fd00::2" }))).toBe("none");
  });

  it("takes a link-local address with its zone (fe80::1%eth0/64), the zone not compared, as PostgreSQL", () => {
    const text = "host all all fe80::1%eth0/64 md5\nhost all all fe80::1%eth0 ffff:: trust\n";
    expect(lineFor(text, tcp({ address: "fe80::5%eth1" }))).toBe("1 md5");
    expect(lineFor(text.split("\n")[1]!, tcp({ address: "fe80::9" }))).toBe("1 trust");
    expect(lineFor(text, tcp({ address: "fe81::5" }))).toBe("none");
  });

  it("reads blanks around a list's commas as PgBouncer does: `alice ,bob` and `alice , bob` are lists", () => {
    const text = "host all alice ,bob 127.0.0.1/32 md5\nhost app , other carol , dave 127.0.0.1/32 trust\n";
    expect(lineFor(text, tcp({ user: "bob" }))).toBe("1 md5");
    expect(lineFor(text, tcp({ user: "dave", database: "other" }))).toBe("2 trust");
    expect(lineFor(text, tcp({ user: "dave", database: "app" }))).toBe("2 trust");
    expect(lineFor(text, tcp({ user: "erin" }))).toBe("none");
  });

  it("lets nothing in that no line names", () => {
    const text = "host app alice 192.168.0.0/16 trust\nlocal app alice trust\n";
    expect(lineFor(text, tcp())).toBe("none");
    expect(lineFor(text, tcp({ address: "192.168.7.7", database: "other" }))).toBe("none");
    expect(lineFor("", tcp())).toBe("none");
  });

  it.each([
    [
      "hots all all 1.2.3.4/32 trust",
      ':1: record type: expected one of local, host, hostssl, hostnossl, got "hots"',
    ],
    [
      "host all all 1.2.3.4/32 ldap",
      ':1: auth method: expected one of trust, reject, md5, password, scram-sha-256, cert, peer, got "ldap"',
    ],
    [
      "host all all db.example.com trust",
      ':1: address: expected an IPv4 or IPv6 address with a /prefix, or an address and mask (host names are not supported, as in PgBouncer), got "db.example.com"',
    ],
    [
      "host all all 1.2.3.4/33 trust",
      ':1: address: expected an IPv4 or IPv6 address with a /prefix, or an address and mask (host names are not supported, as in PgBouncer), got "1.2.3.4/33"',
    ],
    [
      "host all all 127.0.0.1 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff trust",
      ':1: address: expected an IPv4 or IPv6 address with a /prefix, or an address and mask (host names are not supported, as in PgBouncer), got "127.0.0.1 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"',
    ],
    ["local all alice ,", ":1: a list ends with a comma"],
    ["host all alice,,bob 1.2.3.4/32 md5", ":1: cannot parse"],
    [
      "host all all fe80::1 ffff::%eth0 trust",
      ':1: address: expected an IPv4 or IPv6 address with a /prefix, or an address and mask (host names are not supported, as in PgBouncer), got "fe80::1 ffff::%eth0"',
    ],

    ["host all all 1.2.3.4/32", ":1: missing auth method"],
    ["local all", ":1: missing user"],
    [
      "host all all 1.2.3.4/32 md5 map=x",
      ":1: options after the auth method are not supported, as in PgBouncer: map=x",
    ],
    ["host samerole all 1.2.3.4/32 md5", ":1: database samerole is not supported, as in PgBouncer"],
    [
      "host all all 1.2.3.4 trust",
      ':1: address: expected an IPv4 or IPv6 address with a /prefix, or an address and mask (host names are not supported, as in PgBouncer), got "1.2.3.4"',
    ],
    ["host all +admins 1.2.3.4/32 md5", ":1: group +admins is not supported, as in PgBouncer"],
    ["local all a,", ":1: a list ends with a comma"],
    ['local all "a trust', ":1: cannot parse"],
    ["\nhost all @missing.txt 1.2.3.4/32 md5", ":2: user @missing.txt: cannot read"],
    ["host all @hba.conf 1.2.3.4/32 md5", ":1: user @hba.conf includes itself"],
  ])("refuses %j, naming the file and line", (text, message) => {
    expect(() => parseHba(text, FILE)).toThrow(ConfigError);
    expect(() => parseHba(text, FILE)).toThrow(`${FILE}${message}`);
  });
});
