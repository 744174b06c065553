// A socket address as PgBouncer shows it. listen_addr `*` is Node's one dual-stack `::` socket,
// where PgBouncer binds 0.0.0.0 and :: (IPV6_V6ONLY) apart: its IPv4 clients come as
// ::ffff:a.b.c.d here and as a.b.c.d there.

const MAPPED_IPV4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** `address` with an IPv4-mapped IPv6 address as the IPv4 address it maps. */
export function unmappedAddress(address: string): string {
  return MAPPED_IPV4.exec(address)?.[1] ?? address;
}
