// The pooler's validated configuration. Names follow PgBouncer's pgbouncer.ini keys (camelCased);
// durations are stored in milliseconds, whatever unit PgBouncer's file uses (seconds).

import type { LoadBalanceHosts } from "../host-list.ts";
import type { TargetSessionAttrs } from "../target-session.ts";
import type { HbaRule } from "./hba.ts";

export type PoolMode = "session" | "transaction" | "statement";
export type AuthType = "trust" | "any" | "plain" | "md5" | "scram-sha-256" | "cert" | "hba";
/** PgBouncer's client_tls_sslmode / server_tls_sslmode values, weakest first. */
export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full";
/** client_tls_dheparams: no DHE, OpenSSL's choice (2048-bit with a 2048-bit RSA key), 1024-bit. */
export type DheParams = "none" | "auto" | "legacy";

/** One entry of [databases]: where a client-visible database name really lives. */
export interface DatabaseDef {
  /** Name clients connect to; "*" is the fallback entry. */
  name: string;
  /** A host, a socket directory, or a comma-separated list of them (host-list.ts). */
  host: string;
  port: number;
  /** How a host list is used (`load_balance_hosts=`); round-robin when unset. */
  loadBalanceHosts?: LoadBalanceHosts;
  /** Real database name on the server (`dbname=`), defaults to `name`. */
  dbname?: string;
  /** Forced server user and its password (`user=`, `password=`). */
  user?: string;
  password?: string;
  authUser?: string;
  /** The [databases] entry whose server runs auth_query for this entry (`auth_dbname=`), overrides the global one. */
  authDbname?: string;
  poolSize?: number;
  minPoolSize?: number;
  reservePool?: number;
  maxDbConnections?: number;
  maxDbClientConnections?: number;
  serverLifetime?: number;
  /** query_wait_timeout for this database's clients (PgBouncer 1.26); -1 or unset: the user's or global one. */
  queryWaitTimeout?: number;
  poolMode?: PoolMode;
  /** Extra startup parameters sent to the server: `client_encoding=`, `datestyle=`, `timezone=`, `application_name=`. */
  connectParams: Record<string, string>;
  /** Which servers of the host list will do (target-session.ts); any when unset. */
  targetSessionAttrs?: TargetSessionAttrs;
  /** SQL run on each new server connection before any client gets it (`connect_query=`, connect-query.ts). */
  connectQuery?: string;
}

/** One entry of [users]. */
export interface UserDef {
  name: string;
  poolMode?: PoolMode;
  poolSize?: number;
  maxUserConnections?: number;
  maxUserClientConnections?: number;
  /** Per-user timeouts (ms): each overrides the global setting when above 0, as in PgBouncer. */
  queryTimeout?: number;
  queryWaitTimeout?: number;
  idleTransactionTimeout?: number;
  transactionTimeout?: number;
  clientIdleTimeout?: number;
}

/**
 * One entry of [peers]: another pooler of the same group (PgBouncer 1.19's peering), where cancel
 * requests carrying its peer_id are forwarded.
 */
export interface PeerDef {
  /** The key: the peer's own peer_id. */
  id: number;
  /** A host, or a directory holding its Unix socket; empty: unix_socket_dir. */
  host: string;
  port: number;
  /** Cancel requests forwarded to it at once; unset: default_pool_size. */
  poolSize?: number;
}

/** A userlist.txt line: the secret is either plain text, an md5 hash or a SCRAM secret. */
export interface UserSecret {
  name: string;
  /** "plain" | "md5" (md5 + 32 hex of md5(password+user)) | "scram" (SCRAM-SHA-256$iter:salt$stored:server) */
  kind: "plain" | "md5" | "scram";
  secret: string;
}

export interface PoolerConfig {
  databases: Map<string, DatabaseDef>;
  users: Map<string, UserDef>;
  /** From auth_file and, with no auth file, the user:password of DATABASE_URL (as the edoburu image does). */
  authUsers: Map<string, UserSecret>;
  /** [peers] by peer_id. */
  peers: Map<number, PeerDef>;
  /** auth_hba_file's lines, read when auth_type = hba (else empty). */
  hbaRules: HbaRule[];

  /** Empty: the Unix socket only. */
  listenAddr: string;
  listenPort: number;
  /** Empty: no Unix socket. */
  unixSocketDir: string;
  unixSocketGroup?: string;
  unixSocketMode: number;
  authType: AuthType;
  authFile?: string;
  authHbaFile?: string;
  authUser?: string;
  authQuery: string;
  authDbname?: string;
  adminUsers: string[];
  statsUsers: string[];

  poolMode: PoolMode;
  maxClientConn: number;
  /** Client connections per database, per login user (PgBouncer 1.24); 0 = no limit. */
  maxDbClientConnections: number;
  maxUserClientConnections: number;
  defaultPoolSize: number;
  minPoolSize: number;
  reservePoolSize: number;
  reservePoolTimeout: number;
  maxDbConnections: number;
  maxUserConnections: number;
  serverRoundRobin: boolean;
  maxPreparedStatements: number;
  /** This pooler's id in a group of peers (encoded in its cancel keys); 0: no peering. */
  peerId: number;
  /** Not a PgBouncer setting: in transaction/statement pooling, pin a client holding session state to its server (else refuse the statement). */
  pinSessionState: boolean;

  serverResetQuery: string;
  serverResetQueryAlways: boolean;
  /** "" disables the check; "<empty>" (PgBouncer 1.25's default) means: send an empty query. */
  serverCheckQuery: string;
  serverCheckDelay: number;
  serverLifetime: number;
  serverIdleTimeout: number;
  serverConnectTimeout: number;
  serverLoginRetry: number;
  clientLoginTimeout: number;
  clientIdleTimeout: number;
  /** A database made up from the "*" entry is forgotten after this long without clients or servers. */
  autodbIdleTimeout: number;
  /** A pool with no clients and no servers this long is forgotten, stats too; 0 = never. */
  poolIdleTimeout: number;
  queryTimeout: number;
  queryWaitTimeout: number;
  idleTransactionTimeout: number;
  /** A transaction (or a lone statement) running longer closes client and server (PgBouncer 1.25). */
  transactionTimeout: number;
  /** Whole seconds queued before a client is told so in a NOTICE; 0 = never. */
  queryWaitNotify: number;
  /** How long a forwarded cancel request may take to reach PostgreSQL. */
  cancelWaitTimeout: number;
  suspendTimeout: number;
  /** Session pooling: a server RECONNECT/RELOAD marked is closed at the end of its transaction, client too. */
  serverFastClose: boolean;
  /** Simple-protocol Query messages end the client's connection. */
  disablePqexec: boolean;
  /** PBKDF2 iterations of the SCRAM secrets the pooler makes for plain-text passwords and unknown users. */
  scramIterations: number;

  ignoreStartupParameters: string[];
  trackExtraParameters: string[];
  applicationNameAddHost: boolean;

  maxPacketSize: number;
  pktBuf: number;
  listenBacklog: number;
  /** dns_max_ttl (ms): how long a host name's addresses are served from the pooler's DNS cache. */
  dnsMaxTtl: number;
  /** dns_nxdomain_ttl (ms): how long a failed lookup is. */
  dnsNxdomainTtl: number;
  /** SO_REUSEPORT on the TCP listeners: several poolers on one port, the kernel spreading clients. */
  soReuseport: boolean;
  tcpKeepalive: boolean;
  /** tcp_keepidle (whole seconds): idle time before the first keepalive probe; 0: the system's. */
  tcpKeepidle: number;
  /** tcp_keepintvl (whole seconds): time between unanswered keepalive probes; 0: the system's. */
  tcpKeepintvl: number;
  /** tcp_keepcnt: unanswered probes before the connection is dropped; 0: the system's. */
  tcpKeepcnt: number;

  /** Sent to every client as a NOTICE once it is logged in; empty: none. */
  loginNotifyMessage: string;
  /** Log lines are appended here as well as written to stdout. */
  logfile?: string;
  /** Holds the process id while the pooler runs. */
  pidfile?: string;
  /** The Unix user the program becomes at start, before it listens or writes a file. */
  user?: string;
  logConnections: boolean;
  logDisconnections: boolean;
  logPoolerErrors: boolean;
  logStats: boolean;
  statsPeriod: number;
  verbose: number;

  clientTlsSslmode: SslMode;
  clientTlsKeyFile?: string;
  clientTlsCertFile?: string;
  clientTlsCaFile?: string;
  clientTlsProtocols: string;
  clientTlsCiphers: string;
  /** PgBouncer 1.25's client_tls13_ciphers: TLS 1.3 suites, colon-separated; empty: OpenSSL's. */
  clientTls13Ciphers: string;
  clientTlsEcdhcurve: string;
  clientTlsDheparams: DheParams;
  serverTlsSslmode: SslMode;
  serverTlsCaFile?: string;
  serverTlsKeyFile?: string;
  serverTlsCertFile?: string;
  serverTlsProtocols: string;
  serverTlsCiphers: string;
  /** server_tls13_ciphers, as client_tls13_ciphers. */
  serverTls13Ciphers: string;

  /** Not a PgBouncer setting: port of the Prometheus /metrics endpoint, 0 = off. */
  metricsPort: number;
  /**
   * Where the configuration came from, for SHOW CONFIG and RELOAD; `envLogin`, DATABASE_URL's user
   * and password, joins the auth file's users whenever that file is read.
   */
  source: { iniPath?: string; env: boolean; envLogin?: UserSecret };
}
