// max_db_client_connections and max_user_client_connections (PgBouncer 1.24): client connections
// counted per database and per login user from the startup packet on, before authentication, as
// PgBouncer counts them, so a flood of logins for one tenant cannot take the others' places under
// max_client_conn. SHOW DATABASES and SHOW USERS print the counts.

export type ClientLimit = "max_db_client_connections" | "max_user_client_connections";

interface ClientLimitValues {
  /** 0: no limit. */
  db: number;
  user: number;
}

export class ClientCounts {
  private readonly byDb = new Map<string, number>();
  private readonly byUser = new Map<string, number>();

  /**
   * Counts a client of `db` logging in as `user`, unless that would exceed a limit: then it is not
   * counted and the limit is returned.
   */
  admit(db: string, user: string, limits: ClientLimitValues): ClientLimit | null {
    const inDb = this.ofDatabase(db);
    if (limits.db > 0 && inDb >= limits.db) return "max_db_client_connections";
    const ofUser = this.ofUser(user);
    if (limits.user > 0 && ofUser >= limits.user) return "max_user_client_connections";
    this.byDb.set(db, inDb + 1);
    this.byUser.set(user, ofUser + 1);
    return null;
  }

  /** An admitted client has gone. */
  leave(db: string, user: string): void {
    decrement(this.byDb, db);
    decrement(this.byUser, user);
  }

  ofDatabase(db: string): number {
    return this.byDb.get(db) ?? 0;
  }

  ofUser(user: string): number {
    return this.byUser.get(user) ?? 0;
  }
}

/** Names whose count drops to 0 are forgotten: made-up database and user names must not pile up. */
function decrement(counts: Map<string, number>, key: string): void {
  const n = (counts.get(key) ?? 0) - 1;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}
