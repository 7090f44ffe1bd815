import type { Pool } from 'pg';
import { AgentError } from '../../errors.js';

/**
 * The fleet query store's schema (PostgreSQL 15), versioned in `fleet_schema(version)`. Entries
 * are applied in order, each in its own transaction, under an advisory lock so replicas that
 * start together migrate once. Never edit a released entry; append a new one.
 */
const MIGRATIONS: readonly string[] = [
  // 1: devices; batches (UNIQUE (device, seq) is the primary key); the receipt sent for each;
  // distinct readings and verdicts keyed by the device's own ids; events (v3); counters.
  `
  CREATE TABLE devices (
    device text PRIMARY KEY,
    public_key bytea NOT NULL,
    first_seen bigint NOT NULL,
    last_seen bigint NOT NULL
  );
  CREATE TABLE batches (
    device text NOT NULL REFERENCES devices (device),
    seq bigint NOT NULL,
    hash bytea NOT NULL,
    prev bytea NOT NULL,
    envelope bytea NOT NULL,
    received_at bigint NOT NULL,
    reading_count integer NOT NULL,
    t0 bigint NOT NULL,
    t1 bigint NOT NULL,
    boot bigint NOT NULL,
    sync boolean NOT NULL,
    version smallint NOT NULL,
    sealed boolean NOT NULL,
    PRIMARY KEY (device, seq)
  );
  CREATE TABLE receipts (
    device text NOT NULL,
    seq bigint NOT NULL,
    receipt bytea NOT NULL,
    signed_at bigint NOT NULL,
    -- 'replica' (signed by the replica that answered the gateway) or 'log' (applied from the
    -- stream by the projector, after the replica that took it stopped before storing it)
    via text NOT NULL,
    PRIMARY KEY (device, seq),
    FOREIGN KEY (device, seq) REFERENCES batches (device, seq)
  );
  CREATE TABLE readings (
    device text NOT NULL,
    id bigint NOT NULL,
    sensor text NOT NULL,
    ts bigint NOT NULL,
    time_quality smallint NOT NULL,
    value double precision NOT NULL,
    unit text,
    seq bigint,
    source text NOT NULL,
    boot bigint NOT NULL,
    batch_seq bigint NOT NULL,
    -- quality flags of version 3 (wire-format.md §12.3); null before
    flags integer,
    PRIMARY KEY (device, id)
  );
  CREATE TABLE verdicts (
    device text NOT NULL,
    id bigint NOT NULL,
    key text NOT NULL,
    model_id text NOT NULL,
    model_sha256 bytea NOT NULL,
    window_start bigint NOT NULL,
    ts bigint NOT NULL,
    reading_id bigint,
    score double precision,
    outputs jsonb NOT NULL,
    value double precision NOT NULL,
    threshold double precision NOT NULL,
    alert boolean NOT NULL,
    changed boolean NOT NULL,
    batch_seq bigint NOT NULL,
    flags integer,
    PRIMARY KEY (device, id)
  );
  CREATE INDEX verdicts_alert_changes ON verdicts (device, id) WHERE changed;
  -- Agent events carried by version 3 batches (wire-format.md §12), keyed by the device's event id.
  CREATE TABLE events (
    device text NOT NULL,
    id bigint NOT NULL,
    ts bigint NOT NULL,
    kind text NOT NULL,
    key text,
    detail jsonb,
    batch_seq bigint NOT NULL,
    PRIMARY KEY (device, id)
  );
  -- Locks the device (its row, upserted) until the end of the transaction, then returns what is
  -- held at seq - 1, seq and seq + 1. In one call: one round trip. A VOLATILE function takes a new
  -- snapshot per statement, so the SELECT sees what the previous lock holder committed.
  CREATE FUNCTION edge_hold_device(p_device text, p_key bytea, p_at bigint, p_seq bigint)
  RETURNS TABLE (held_seq bigint, held_hash bytea, held_prev bytea, held_receipt bytea) LANGUAGE plpgsql VOLATILE AS $fn$
  BEGIN
    INSERT INTO devices (device, public_key, first_seen, last_seen) VALUES (p_device, p_key, p_at, p_at)
    ON CONFLICT (device) DO UPDATE SET last_seen = greatest(devices.last_seen, excluded.last_seen);
    RETURN QUERY SELECT b.seq, b.hash, b.prev, r.receipt FROM batches b JOIN receipts r USING (device, seq)
      WHERE b.device = p_device AND b.seq BETWEEN p_seq - 1 AND p_seq + 1;
  END
  $fn$;
  CREATE TABLE counters (
    name text NOT NULL,
    label text NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (name, label)
  );
  `,
];

export const FLEET_SCHEMA_VERSION = MIGRATIONS.length;
/** pg_advisory_xact_lock key: "edge" in ASCII. */
const MIGRATION_LOCK = 0x65646765;

/** Brings the database to FLEET_SCHEMA_VERSION; refuses one written by a newer receiver. */
export async function migrateFleetSchema(pool: Pool, where: string): Promise<void> {
  const client = await pool.connect();
  const onError = () => undefined; // the failing statement reports it
  client.on('error', onError);
  try {
    for (;;) {
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
        await client.query('CREATE TABLE IF NOT EXISTS fleet_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
        const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM fleet_schema');
        const current = rows[0]?.v ?? 0;
        if (current > FLEET_SCHEMA_VERSION) {
          throw new AgentError(
            'STORE_NEWER_SCHEMA',
            `${where} has fleet schema version ${current}, newer than this receiver understands (${FLEET_SCHEMA_VERSION}); upgrade every replica to the same edge-agent`,
          );
        }
        if (current === FLEET_SCHEMA_VERSION) {
          await client.query('COMMIT');
          return;
        }
        await client.query(MIGRATIONS[current]!);
        await client.query('INSERT INTO fleet_schema (version) VALUES ($1)', [current + 1]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
    }
  } finally {
    client.off('error', onError);
    client.release();
  }
}
