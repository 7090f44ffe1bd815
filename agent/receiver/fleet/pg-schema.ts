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
  -- Heartbeats for GET /v1/devices/DID/availability.
  CREATE INDEX events_heartbeats ON events (device, kind, ts);
  CREATE TABLE counters (
    name text NOT NULL,
    label text NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (name, label)
  );
  -- Stores one batch if, under the device's row lock, what is held at seq - 1, seq and seq + 1
  -- is still what the caller read and decided on (agent/receiver/chain-decision.ts); otherwise
  -- returns false and the caller reads and decides again. One call, one round trip: under load
  -- each round trip waits for a CPU. A VOLATILE function takes a new snapshot per statement, so
  -- the checks after the lock see what the previous holder committed.
  CREATE FUNCTION edge_store_batch(
    p_device text, p_key bytea, p_at bigint, p_seq bigint, p_seen_before bytea, p_seen_after bytea,
    p_hash bytea, p_prev bytea, p_envelope bytea, p_count integer, p_t0 bigint, p_t1 bigint, p_boot bigint,
    p_sync boolean, p_version smallint, p_sealed boolean, p_receipt bytea, p_via text,
    r_i bigint[], r_s text[], r_t bigint[], r_q smallint[], r_v float8[], r_u text[], r_n bigint[], r_src text[], r_b bigint[], r_f integer[],
    p_verdicts jsonb, p_events jsonb, p_drops jsonb
  ) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
  BEGIN
    INSERT INTO devices (device, public_key, first_seen, last_seen) VALUES (p_device, p_key, p_at, p_at)
    ON CONFLICT (device) DO UPDATE SET last_seen = greatest(devices.last_seen, excluded.last_seen);
    IF EXISTS (SELECT 1 FROM batches WHERE device = p_device AND seq = p_seq)
       OR (SELECT hash FROM batches WHERE device = p_device AND seq = p_seq - 1) IS DISTINCT FROM p_seen_before
       OR (SELECT hash FROM batches WHERE device = p_device AND seq = p_seq + 1) IS DISTINCT FROM p_seen_after THEN
      RETURN false;
    END IF;
    INSERT INTO batches (device, seq, hash, prev, envelope, received_at, reading_count, t0, t1, boot, sync, version, sealed)
    VALUES (p_device, p_seq, p_hash, p_prev, p_envelope, p_at, p_count, p_t0, p_t1, p_boot, p_sync, p_version, p_sealed);
    INSERT INTO receipts (device, seq, receipt, signed_at, via) VALUES (p_device, p_seq, p_receipt, p_at, p_via);
    -- A reading or verdict re-sent in another batch is stored once (keyed by the device's own id).
    INSERT INTO readings (device, id, sensor, ts, time_quality, value, unit, seq, source, boot, batch_seq, flags)
    SELECT p_device, x.i, x.s, x.t, x.q, x.v, x.u, x.n, x.src, x.rb, p_seq, x.f
    FROM unnest(r_i, r_s, r_t, r_q, r_v, r_u, r_n, r_src, r_b, r_f) AS x(i, s, t, q, v, u, n, src, rb, f)
    ON CONFLICT (device, id) DO NOTHING;
    INSERT INTO verdicts (device, id, key, model_id, model_sha256, window_start, ts, reading_id, score, outputs, value, threshold, alert, changed, batch_seq, flags)
    SELECT p_device, (x->>'i')::bigint, x->>'k', x->>'model', decode(x->>'h', 'hex'), (x->>'w')::bigint, (x->>'t')::bigint,
           (x->>'r')::bigint, (x->>'s')::float8, x->'o', (x->>'v')::float8, (x->>'th')::float8, (x->>'a')::boolean, (x->>'c')::boolean, p_seq, (x->>'f')::integer
    FROM jsonb_array_elements(p_verdicts) AS x
    ON CONFLICT (device, id) DO NOTHING;
    INSERT INTO events (device, id, ts, kind, key, detail, batch_seq)
    SELECT p_device, (x->>'i')::bigint, (x->>'t')::bigint, x->>'k', x->>'s', x->'d', p_seq FROM jsonb_array_elements(p_events) AS x
    ON CONFLICT (device, id) DO NOTHING;
    -- Readings the gateway dropped under its disk budget (wire-format.md §4), per device and sensor.
    INSERT INTO counters (name, label, value)
    SELECT 'dropped', p_device || ' ' || (x->>'s'), (x->>'n')::bigint FROM jsonb_array_elements(p_drops) AS x
    ON CONFLICT (name, label) DO UPDATE SET value = counters.value + excluded.value;
    RETURN true;
  END
  $fn$;
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
