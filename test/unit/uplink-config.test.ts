import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../agent/config/load.js';
import { parseRetryAfter, MAX_RETRY_AFTER_MS } from '../../agent/uplink/http/retry-after.js';
import { TokenBuckets } from '../../agent/receiver/rate-limit.js';
import { topicFor } from '../../agent/uplink/mqtt/config.js';

const base = (uplink: string, source = '') => `version: 1
device: {}
store: {}
batch: {}
sources:${source ? `\n${source}` : ' {}'}
clock: {}
log: {}
uplink:
${uplink}`;

const mqttSource = (extra: string) => `  mqtt:
    type: mqtt
    url: mqtt://127.0.0.1:1883
    topics: ['sensors/#']
    client_id: gw1
${extra}`;

describe('uplink config: http | mqtt, with TLS', () => {
  it('fills MQTT uplink defaults: topic and reply topic per device, QoS 1 session settings', () => {
    const c = parseConfig(base('  type: mqtt\n  url: mqtts://broker.example:8883'), 'f.yaml');
    expect(c.uplink).toMatchObject({ type: 'mqtt', topic: 'edge/{device}/batches', reply_topic: 'edge/{device}/receipts', session_expiry_s: 604800, timeout_ms: 10000 });
    expect(topicFor('edge/{device}/batches', 'did:key:zAbc')).toBe('edge/did:key:zAbc/batches');
  });

  it('names the key of each mistake: wildcard topic, tls on a plain URL, a client cert without its key, an unknown tls key', () => {
    expect(() => parseConfig(base('  type: mqtt\n  url: mqtt://b:1883\n  topic: edge/+/batches'), 'f.yaml')).toThrow(/f\.yaml:\d+: uplink\.topic: must be a topic name without the wildcards/);
    expect(() => parseConfig(base('  type: mqtt\n  url: mqtt://b:1883\n  tls: { ca_file: ca.pem }'), 'f.yaml')).toThrow(/uplink\.tls: is set but url is mqtt:\/\/: use mqtts:\/\//);
    expect(() => parseConfig(base('  type: http\n  url: http://r/v1/batches\n  tls: { ca_file: ca.pem }'), 'f.yaml')).toThrow(/uplink\.tls: is set but url is http:\/\//);
    expect(() => parseConfig(base('  type: http\n  url: https://r/v1/batches\n  tls: { cert_file: c.pem }'), 'f.yaml')).toThrow(/uplink\.tls: cert_file and key_file go together/);
    expect(() => parseConfig(base('  type: http\n  url: https://r/v1/batches\n  tls: { insecure: true }'), 'f.yaml')).toThrow(/uplink\.tls\.insecure: unknown key/);
    expect(() => parseConfig(base('  type: ftp\n  url: ftp://x'), 'f.yaml')).toThrow(/uplink\.type/);
    expect(() => parseConfig(base('  type: mqtt\n  url: mqtt://b:1883\n  password_file: p'), 'f.yaml')).toThrow(/uplink\.password_file: needs username/);
    expect(() => parseConfig(base('  type: http\n  url: https://r/v1/batches', mqttSource('    tls: { ca_file: ca.pem }')), 'f.yaml')).toThrow(/sources\.mqtt\.tls: is set but url is mqtt:\/\//);
  });

  it('keeps verification on unless insecure_skip_verify is written out', () => {
    const c = parseConfig(base('  type: http\n  url: https://r/v1/batches\n  tls: { ca_file: ca.pem }'), 'f.yaml');
    expect(c.uplink?.tls).toEqual({ ca_file: 'ca.pem', insecure_skip_verify: false });
  });
});

describe('Retry-After (RFC 9110 §10.2.3)', () => {
  it('reads delay-seconds and HTTP-dates, caps long waits, ignores garbage', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(['7'], now)).toBe(7000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('999999', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-1', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('token buckets per client', () => {
  it('allows the burst, then the rate, per key, and says when to come back', () => {
    const b = new TokenBuckets(2, 3);
    const t = 1_000_000;
    expect([1, 2, 3].map(() => b.take('a', t).ok)).toEqual([true, true, true]);
    expect(b.take('a', t)).toEqual({ ok: false, retryAfterS: 1 });
    expect(b.take('b', t).ok).toBe(true); // another client has its own bucket
    expect(b.take('a', t + 499).ok).toBe(false);
    expect(b.take('a', t + 600).ok).toBe(true); // 0.5 s at 2/s refills one token
  });

  it('stays bounded: quiet clients are forgotten first', () => {
    const b = new TokenBuckets(1, 1, 100);
    for (let i = 0; i < 1000; i++) b.take(`c${i}`, i * 10_000);
    expect(b.trackedClients).toBeLessThanOrEqual(100);
  });
});
