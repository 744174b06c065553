// auth_hba_file: PgBouncer's subset of pg_hba.conf, read when auth_type = hba. Record types local,
// host, hostssl, hostnossl; databases and users all, sameuser, replication (matches nothing here),
// @file or a comma list (PgBouncer reads both columns alike: a user sameuser is one named as the database); IPv4/IPv6 addresses as CIDR or address + mask, the
// mask applied bit by bit as PostgreSQL and PgBouncer apply it (a bare address is refused, as PostgreSQL does); methods trust, reject, md5, password,
// scram-sha-256, cert and peer. The first line that matches a connection decides, as in PostgreSQL.

import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { unmappedAddress } from "../address.ts";
import { ConfigError } from "./errors.ts";

export type HbaMethod = "trust" | "reject" | "md5" | "password" | "scram-sha-256" | "cert" | "peer";
const METHODS: readonly HbaMethod[] = ["trust", "reject", "md5", "password", "scram-sha-256", "cert", "peer"];
const TYPES = ["local", "host", "hostssl", "hostnossl"] as const;
type RecordType = (typeof TYPES)[number];
type Family = "ipv4" | "ipv6";

/** A database or user field: `all`, `sameuser` (the user's and database's names are one), or names. */
interface NameSet {
  all: boolean;
  sameuser: boolean;
  names: ReadonlySet<string>;
}
type NewNameSet = NameSet & { names: Set<string>; replication: boolean };

const NO_ONE: NameSet = { all: false, sameuser: false, names: new Set() };

export interface HbaRule {
  /** file:line, for logs */
  where: string;
  type: RecordType;
  databases: NameSet;
  users: NameSet;
  /** null for local lines and for `all`; `base` is the address with the mask applied */
  addresses: { family: Family; base: Buffer; mask: Buffer } | null;
  method: HbaMethod;
}

export interface HbaConnection {
  unixSocket: boolean;
  tls: boolean;
  /** the peer's IP address (TCP only) */
  address: string | undefined;
  database: string;
  user: string;
}

/** The first rule that matches, or undefined: no line lets the connection in. */
export function matchHba(rules: readonly HbaRule[], c: HbaConnection): HbaRule | undefined {
  return rules.find(
    (r) =>
      typeMatches(r.type, c) &&
      (r.databases.all ||
        (r.databases.sameuser && c.database === c.user) ||
        r.databases.names.has(c.database)) &&
      (r.users.all || (r.users.sameuser && c.user === c.database) || r.users.names.has(c.user)) &&
      (r.addresses === null || addressMatches(r.addresses, c.address)),
  );
}

function typeMatches(type: RecordType, c: HbaConnection): boolean {
  if (type === "local") return c.unixSocket;
  if (c.unixSocket) return false;
  return type === "host" || (type === "hostssl") === c.tls;
}

/**
 * A line matches clients of its own address family only (::/0 does not take IPv4 clients as
 * mapped addresses); a dual-stack listener's ::ffff:a.b.c.d is IPv4. The scope of a link-local
 * address (fe80::1%eth0) is not compared, as by PostgreSQL.
 */
function addressMatches(rule: NonNullable<HbaRule["addresses"]>, address: string | undefined): boolean {
  if (address === undefined) return false;
  const plain = unmappedAddress(address);
  if (familyOf(plain) !== rule.family) return false;
  const bytes = addressBytes(plain, rule.family);
  return rule.mask.every((m, i) => (bytes[i]! & m) === rule.base[i]);
}

/**
 * Reads and parses the file; a relative path is the working directory's, as auth_file. `warnings`
 * gets what PgBouncer would skip with a warning and cannot match here anyway.
 */
export function readHbaFile(file: string, warnings: string[] = []): HbaRule[] {
  const full = path.resolve(file);
  return parseHba(readText(full, "auth_hba_file"), full, warnings);
}

function readText(file: string, label: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(
      `${label}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

/** Where a line is, for errors and warnings, and the folder its @file includes are relative to. */
interface Place {
  where: string;
  dir: string;
  warnings: string[];
  /** the files being read, the hba file first, to refuse an @file that includes itself */
  including: readonly string[];
}

/** `file` labels errors and anchors @file includes (relative to its folder, as PostgreSQL's). */
export function parseHba(text: string, file: string, warnings: string[] = []): HbaRule[] {
  const rules: HbaRule[] = [];
  eachLine(text, file, (fields, where) => {
    rules.push(parseRule(fields, { where, dir: path.dirname(file), warnings, including: [file] }));
  });
  return rules;
}

/** The non-blank lines of a file as fields, each with its file:line. */
function eachLine(text: string, file: string, use: (fields: Token[][], where: string) => void): void {
  text.split("\n").forEach((raw, i) => {
    const where = `${file}:${i + 1}`;
    const fields = tokenize(raw, where);
    if (fields.length > 0) use(fields, where);
  });
}

/** A token is a word or a double-quoted string; a quoted keyword ("all") is a plain name. */
interface Token {
  text: string;
  quoted: boolean;
}

// blanks may stand before a list's comma as well as after it (PgBouncer's tokenizer reads the comma
// on its own; PostgreSQL would take what follows ` ,` as the next field)
const WORD = /\s*("(?:[^"]|"")*"|[^\s,"#]+)(\s*,)?/y;
/** the rest of a line is blank, or a comment: a # outside quotes, as in PostgreSQL and PgBouncer */
const END = /\s*(?:#[^]*)?$/y;

/** Fields are separated by blanks; a field is a comma-separated list of tokens. */
function tokenize(line: string, where: string): Token[][] {
  const fields: Token[][] = [];
  let field: Token[] = [];
  for (let at = 0; ; at = WORD.lastIndex) {
    END.lastIndex = WORD.lastIndex = at;
    if (END.test(line)) break;
    const m = WORD.exec(line);
    if (m === null) throw new ConfigError(`${where}: cannot parse ${JSON.stringify(line.slice(at).trim())}`);
    const word = m[1]!;
    const quoted = word.startsWith('"');
    field.push({ text: quoted ? word.slice(1, -1).replaceAll('""', '"') : word, quoted });
    if (m[2] === undefined) {
      fields.push(field);
      field = [];
    }
  }
  if (field.length > 0) throw new ConfigError(`${where}: a list ends with a comma`);
  return fields;
}

function parseRule(fields: Token[][], place: Place): HbaRule {
  const { where } = place;
  const single = (i: number, what: string): string => {
    const f = fields[i];
    if (f === undefined) throw new ConfigError(`${where}: missing ${what}`);
    if (f.length !== 1) throw new ConfigError(`${where}: expected one ${what}, got a list`);
    return f[0]!.text;
  };
  const type = single(0, "record type") as RecordType;
  if (!TYPES.includes(type)) {
    throw new ConfigError(
      `${where}: record type: expected one of ${TYPES.join(", ")}, got ${JSON.stringify(type)}`,
    );
  }
  const databases = nameSet(fields[1], "database", place);
  const users = nameSet(fields[2], "user", place);
  let next = 3;
  let addresses: HbaRule["addresses"] = null;
  if (type !== "local") {
    const address = single(3, "address");
    const mask = fields[4]?.[0]?.text;
    const withMask = mask !== undefined && net.isIP(mask) !== 0;
    addresses = address === "all" ? null : addressList(address, withMask ? mask : undefined, where);
    next = withMask ? 5 : 4;
  }
  const method = single(next, "auth method") as HbaMethod;
  if (!METHODS.includes(method)) {
    throw new ConfigError(
      `${where}: auth method: expected one of ${METHODS.join(", ")}, got ${JSON.stringify(method)}`,
    );
  }
  const options = fields.slice(next + 1).flat();
  if (options.length > 0) {
    throw new ConfigError(
      `${where}: options after the auth method are not supported, as in PgBouncer: ${options.map((t) => t.text).join(" ")}`,
    );
  }
  return { where, type, databases, users, addresses, method };
}

/**
 * The database and user columns take the same keywords, as PgBouncer 1.18 reads them (measured):
 * a user column's sameuser matches a user named as the database, where PostgreSQL would take it as
 * a role's name; its replication makes the line match no one, whatever else the column lists, as
 * PgBouncer skips such a line (its other users let in by it would be let in by no PgBouncer).
 */
function nameSet(field: Token[] | undefined, what: string, place: Place): NameSet {
  if (field === undefined) throw new ConfigError(`${place.where}: missing ${what}`);
  const set = { all: false, sameuser: false, names: new Set<string>(), replication: false };
  addNames(set, field, what, place);
  return set.replication && what === "user" ? NO_ONE : set;
}

function addNames(set: NewNameSet, tokens: Token[], what: string, place: Place): void {
  const { where } = place;
  for (const token of tokens) {
    if (!token.quoted && token.text === "all") set.all = true;
    else if (!token.quoted && token.text === "sameuser") set.sameuser = true;
    else if (!token.quoted && token.text === "replication") {
      // PostgreSQL's keyword for physical replication connections, which the pooler refuses: a
      // line of pg_hba.conf's defaults that can never match here (PgBouncer skips it too)
      set.replication = true;
      place.warnings.push(`${where}: ${what} replication: the pooler takes no replication connections`);
    } else if (!token.quoted && token.text.startsWith("@")) {
      includeNames(set, token.text, what, place);
    } else if (!token.quoted && /^(samerole|samegroup)$/.test(token.text)) {
      throw new ConfigError(`${where}: ${what} ${token.text} is not supported, as in PgBouncer`);
    } else if (!token.quoted && token.text.startsWith("+")) {
      throw new ConfigError(`${where}: group ${token.text} is not supported, as in PgBouncer`);
    } else set.names.add(token.text);
  }
}

/**
 * @file: its words, quoted or not, on any line and separated by blanks or commas, as PostgreSQL
 * reads them; it may include others, relative to its own folder.
 */
function includeNames(set: NewNameSet, ref: string, what: string, place: Place): void {
  const file = path.resolve(place.dir, ref.slice(1));
  if (place.including.includes(file)) {
    throw new ConfigError(`${place.where}: ${what} ${ref} includes itself`);
  }
  const inner = { ...place, dir: path.dirname(file), including: [...place.including, file] };
  eachLine(readText(file, `${place.where}: ${what} ${ref}`), file, (fields, where) =>
    addNames(set, fields.flat(), what, { ...inner, where }),
  );
}

function addressList(
  address: string,
  mask: string | undefined,
  where: string,
): NonNullable<HbaRule["addresses"]> {
  const [ip = "", bits, extra] = address.split("/");
  const family = familyOf(ip);
  const max = family === "ipv4" ? 32 : 128;
  // a bare address is no single host: PostgreSQL refuses it and PgBouncer skips the line
  let maskBytes: Buffer | undefined;
  if (mask !== undefined) {
    if (family !== null && bits === undefined) maskBytes = netmask(mask, family);
  } else if (family !== null && bits !== undefined && /^\d{1,3}$/.test(bits) && Number(bits) <= max) {
    maskBytes = prefixMask(Number(bits), max / 8);
  }
  if (family === null || extra !== undefined || maskBytes === undefined) {
    const got = JSON.stringify(mask === undefined ? address : `${address} ${mask}`);
    throw new ConfigError(
      `${where}: address: expected an IPv4 or IPv6 address with a /prefix, or an address and mask ` +
        `(host names are not supported, as in PgBouncer), got ${got}`,
    );
  }
  const base = Buffer.from(addressBytes(ip, family).map((b, i) => b & maskBytes[i]!));
  return { family, base, mask: maskBytes };
}

/**
 * A mask written out as an address of the family; its bits need not be contiguous (255.0.255.0),
 * as PostgreSQL and PgBouncer 1.18 take it.
 */
function netmask(mask: string, family: Family): Buffer | undefined {
  // net.isIP takes a zone (fe80::%eth0), which no mask has
  if (net.isIP(mask) !== (family === "ipv4" ? 4 : 6) || mask.includes("%")) return undefined;
  return addressBytes(mask, family);
}

/** /24 → ff ff ff 00 */
function prefixMask(prefix: number, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = 0xff & (0xff00 >> Math.min(8, Math.max(0, prefix - i * 8)));
  return bytes;
}

function familyOf(address: string): Family | null {
  return net.isIPv4(address) ? "ipv4" : net.isIPv6(address) ? "ipv6" : null;
}

/** A valid address's bytes in network order: 4 of IPv4, 16 of IPv6 (a zone, fe80::1%eth0, left out). */
function addressBytes(address: string, family: Family): Buffer {
  if (family === "ipv4") return Buffer.from(address.split(".").map(Number));
  const bytes = Buffer.alloc(16);
  // the URL parser refuses a zone
  ipv6Groups(address.split("%")[0]!).forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}

/** The eight hex groups of a valid IPv6 address, "::" filled in (the URL parser writes any dotted tail in hex). */
function ipv6Groups(address: string): string[] {
  const [head = "", tail] = new URL(`http://[${address}]`).hostname.slice(1, -1).split("::");
  const groups = (s: string | undefined): string[] => (s ? s.split(":") : []);
  const h = groups(head);
  const t = groups(tail);
  return tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
}
