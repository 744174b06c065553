// Loads the pooler's configuration: PgBouncer's defaults, then a pgbouncer.ini if given (else the defaults
// the edoburu image writes), then environment variables, which win as a user of the image expects.
// Called again on SIGHUP; a ConfigError then leaves the running configuration in place.

import path from "node:path";
import { ConfigError } from "./errors.ts";
import { applyEnvSettings, applyImageDefaults, readEnvDatabase, type Env } from "./env.ts";
import { applyIni, readIniFile } from "./ini.ts";
import { defaultConfig, SETTINGS } from "./settings.ts";
import { buildTls, type TlsSetup } from "./tls.ts";
import type { PoolerConfig, UserSecret } from "./types.ts";
import { readUserlist } from "./userlist.ts";
import { readHbaFile } from "./hba.ts";
import { isSocketDir, socketPathProblem, unixSocketPath } from "../unix-socket.ts";
import { parseHostList } from "../host-list.ts";

export { ConfigError } from "./errors.ts";
export { applySetting, findSetting, MAX_DBNAME, showConfigRows, SETTINGS } from "./settings.ts";
export type { ApplyOptions, ApplyResult, SettingDef, ShowConfigRow } from "./settings.ts";
export { classifySecret, formatUserlistLine, parseUserlist } from "./userlist.ts";
export type { Env } from "./env.ts";
export type * from "./types.ts";
export { buildTls, tlsRequired } from "./tls.ts";
export type { ClientTls, ServerTls, TlsSetup } from "./tls.ts";

export interface LoadConfigOptions {
  env: Env;
  iniPath?: string;
  /**
   * At a reload, the running configuration: settings PgBouncer reads only at start keep their
   * running values (a warning names any the files change), as its RELOAD does.
   */
  running?: PoolerConfig;
}

export interface LoadedConfig {
  config: PoolerConfig;
  /** Accepted but ignored input (settings and parameters we do not implement), one message each, to log. */
  warnings: string[];
  /**
   * The TLS contexts, where loading had to check the files (at start; on a reload, when a TLS
   * setting changed): read once, as a key handed over through a pipe can be read only once.
   */
  tls?: TlsSetup;
}

export function loadConfig({ env, iniPath, running }: LoadConfigOptions): LoadedConfig {
  const config = defaultConfig();
  const envDb = readEnvDatabase(env);
  const warnings = [...envDb.warnings];

  if (iniPath === undefined) applyImageDefaults(config, envDb.user);
  else warnings.push(...applyIni(config, readIniFile(iniPath)));
  const usedEnv = applyEnvSettings(config, env, warnings);
  if (envDb.database !== undefined) config.databases.set(envDb.database.name, envDb.database);

  config.source = {
    iniPath,
    env: usedEnv.length > 0 || envDb.database !== undefined,
    ...(envDb.login ? { envLogin: envDb.login } : {}),
  };
  config.authUsers = readAuthUsers(config);
  if (running !== undefined) warnings.push(...keepRestartOnly(config, running));
  warnings.push(...checkConfig(config, { readHba: true }));
  // missing or unusable key, certificate or CA files stop the start, or a reload that names other
  // ones; files named as before are read again by the reload itself (Pooler.tlsFor), which keeps
  // the contexts in force if they cannot be
  if (running === undefined || tlsSettingsChanged(config, running)) {
    return { config, warnings, tls: buildTls(config) };
  }
  return { config, warnings };
}

/**
 * auth_file's users, plus the env login unless the file has that user (the image appends it to
 * userlist.txt the same way). A relative auth_file is taken from the working directory, as in
 * PgBouncer.
 */
export function readAuthUsers(config: PoolerConfig): Map<string, UserSecret> {
  const envLogin = config.source.envLogin;
  const users =
    config.authFile === undefined
      ? new Map<string, UserSecret>()
      : readUserlist(path.resolve(config.authFile));
  if (envLogin !== undefined && !users.has(envLogin.name)) users.set(envLogin.name, envLogin);
  return users;
}

function keepRestartOnly(config: PoolerConfig, running: PoolerConfig): string[] {
  const warnings: string[] = [];
  for (const s of SETTINGS) {
    if (s.changeable || s.show(config) === s.show(running)) continue;
    warnings.push(`${s.key}: changed to ${JSON.stringify(s.show(config))}, which takes effect at a restart`);
    (config as unknown as Record<string, unknown>)[s.field] = running[s.field];
  }
  return warnings;
}

/**
 * The checks across settings that start, RELOAD and the console's SET all make, on the whole
 * configuration they would put in force; throws ConfigError. `readHba`: auth_hba_file's rules are
 * read into it (auth_type=hba), as the configuration in force must have them. Returns the file's
 * warnings.
 */
export function checkConfig(config: PoolerConfig, { readHba }: { readHba: boolean }): string[] {
  const warnings: string[] = [];
  if (config.authType === "hba") {
    if (config.authHbaFile === undefined) {
      throw new ConfigError(
        "auth_type: hba needs auth_hba_file (AUTH_HBA_FILE), PostgreSQL's pg_hba.conf format",
      );
    }
    if (readHba) config.hbaRules = readHbaFile(config.authHbaFile, warnings);
  }
  validate(config);
  return warnings;
}

function validate(config: PoolerConfig): void {
  if (config.databases.size === 0) {
    throw new ConfigError(
      "no database defined: expected DATABASE_URL or DB_HOST, or a [databases] section in the ini file",
    );
  }
  // hba may name only trust or cert lines; its password lines fail at login without users
  const needsUsers = ["plain", "md5", "scram-sha-256"].includes(config.authType);
  if (
    needsUsers &&
    config.authFile === undefined &&
    config.authUser === undefined &&
    config.authUsers.size === 0
  ) {
    throw new ConfigError(
      `auth_type: ${config.authType} needs users: expected auth_file (AUTH_FILE), auth_user (AUTH_USER) ` +
        "or a user and password in DATABASE_URL (DB_USER/DB_PASSWORD)",
    );
  }
  const tcp = config.listenAddr.trim() !== "";
  if (!tcp && config.unixSocketDir === "") {
    throw new ConfigError("listen_addr and unix_socket_dir are both empty: nothing to listen on");
  }
  if (!tcp && config.metricsPort > 0) {
    throw new ConfigError("metrics_port: the metrics endpoint listens on listen_addr, which is empty");
  }
  if (!tcp && config.listenPort === 0) {
    throw new ConfigError(
      "listen_port: 0 (a free port) needs a TCP listen_addr; the Unix socket's name needs a real port",
    );
  }
  const socketPaths = [...config.databases.values()].flatMap((db) =>
    parseHostList(db.host)
      .filter((host) => isSocketDir(host) || (host === "" && config.unixSocketDir !== ""))
      .map((host) => ({
        what: `[databases] ${db.name}`,
        path: unixSocketPath(host || config.unixSocketDir, db.port),
      })),
  );
  for (const peer of config.peers.values()) {
    if (peer.host.includes(","))
      throw new ConfigError(`[peers] ${peer.id}: host: expected one host, got a list`);
    if (isSocketDir(peer.host) || (peer.host === "" && config.unixSocketDir !== "")) {
      socketPaths.push({
        what: `[peers] ${peer.id}`,
        path: unixSocketPath(peer.host || config.unixSocketDir, peer.port),
      });
    }
  }
  if (config.unixSocketDir !== "" && config.listenPort !== 0) {
    socketPaths.push({
      what: "unix_socket_dir",
      path: unixSocketPath(config.unixSocketDir, config.listenPort),
    });
  }
  for (const { what, path: socketPath } of socketPaths) {
    const problem = socketPathProblem(socketPath);
    if (problem !== null) throw new ConfigError(`${what}: ${problem}`);
  }
  if (config.unixSocketDir === "") {
    const unixOnly = [
      ...[...config.databases.values()].filter((db) => db.host === "").map((db) => `[databases] ${db.name}`),
      ...[...config.peers.values()].filter((p) => p.host === "").map((p) => `[peers] ${p.id}`),
    ];
    if (unixOnly.length > 0) {
      throw new ConfigError(
        `${unixOnly.join(", ")}: no host= means the Unix socket in ` +
          "unix_socket_dir, which is empty: set host= or unix_socket_dir",
      );
    }
  }
  if (
    config.authType === "cert" &&
    config.clientTlsSslmode !== "verify-ca" &&
    config.clientTlsSslmode !== "verify-full"
  ) {
    throw new ConfigError(
      "auth_type: cert needs client_tls_sslmode verify-ca or verify-full, with client_tls_ca_file: only a verified certificate names a user",
    );
  }
  // default_pool_size = 0 means unlimited (PgBouncer 1.24)
  if (config.defaultPoolSize > 0 && config.minPoolSize > config.defaultPoolSize) {
    throw new ConfigError(
      `min_pool_size: expected at most default_pool_size (${config.defaultPoolSize}), got "${config.minPoolSize}"`,
    );
  }
}

/** A client_tls* or server_tls* setting: what buildTls reads besides the files. */
export function isTlsSetting(key: string): boolean {
  return /^(client|server)_tls(13)?_/.test(key);
}

/** Whether any TLS setting differs. */
export function tlsSettingsChanged(config: PoolerConfig, running: PoolerConfig): boolean {
  return SETTINGS.some((s) => isTlsSetting(s.key) && s.show(config) !== s.show(running));
}
