-- Client addresses are now canonical (an IPv4 caller on an IPv6 listener is a.b.c.d, not
-- ::ffff:a.b.c.d), so networks stored in the IPv4-mapped form before that, the form the
-- audit log then showed, are rewritten as IPv4: a block must keep matching its attacker,
-- and stay removable from the panel (which canonicalises what it is given).
CREATE FUNCTION pg_temp.unmapped(net cidr) RETURNS cidr LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN family(net) = 6 AND masklen(net) >= 96 AND net <<= '::ffff:0:0/96'::cidr
        THEN set_masklen(substring(host(net) FROM '^::ffff:(.+)$')::inet, masklen(net) - 96)::cidr
        ELSE net
    END
$$;

-- A block stored both ways keeps its IPv4 row.
DELETE FROM ip_blocks mapped
USING ip_blocks plain
WHERE pg_temp.unmapped(mapped.network) <> mapped.network
  AND plain.network = pg_temp.unmapped(mapped.network);
UPDATE ip_blocks SET network = pg_temp.unmapped(network)
WHERE pg_temp.unmapped(network) <> network;
UPDATE rate_limit_overrides SET network = pg_temp.unmapped(network)
WHERE network IS NOT NULL AND pg_temp.unmapped(network) <> network;
UPDATE sign_in_failures SET ip = pg_temp.unmapped(ip::cidr)::inet
WHERE family(ip) = 6 AND ip <<= '::ffff:0:0/96'::inet;
