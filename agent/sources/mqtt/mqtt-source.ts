import { createHash } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { describeTlsError } from '../../util/tls.js';
import { excerpt, ThrottledWarn } from '../../util/log-throttle.js';
import { parsePayload, sensorFromTopic, type ParseResult } from '../../payloads/parse.js';
import { RepeatedLog } from '../../util/repeated-log.js';
import type { Source, SourceContext, SourceHealth } from '../source.js';
import type { MqttSourceConfig } from './config.js';
import { brokerConnectOptions } from './connection.js';
import { DeferredPubacks } from './deferred-puback.js';
import { topicMatches } from '../../util/topic-filter.js';
import { MQTT_CLIENT_MEMORY } from '../../util/mqtt-memory.js';
import { disableNagle } from '../../util/mqtt-no-delay.js';

/**
 * Subscribes with QoS 1 on a persistent MQTT 5 session and sends each PUBACK only after the
 * message's readings are committed. mqtt.js calls `customHandleAcks` only with protocol
 * version 5 and handles the next packet only after the callback, so messages are committed
 * in arrival order; the broker keeps everything unacknowledged for the session.
 */
export class MqttSource implements Source {
  readonly id: string;
  private client: MqttClient | undefined;
  private readonly stats = { accepted: 0, duplicates: 0, rejected: 0 };
  private readonly rejectWarn: ThrottledWarn;
  private connected = false;
  private lastMessageAt: number | undefined;
  private lastError: string | undefined;
  private pubacks: DeferredPubacks | undefined;
  private stopping = false;
  private commitFailed: RepeatedLog | undefined;
  private lossAt: number | undefined;
  private sessionNotedAt = 0;
  private loss: string | undefined;
  /** Messages handed to the store whose commit has not settled yet (their PUBACKs are held back). */
  private uncommitted = 0;
  private readingPausedNoted = false;
  private markSubscribed!: () => void;
  private readonly subscribed = new Promise<void>((resolve) => (this.markSubscribed = resolve));

  constructor(
    private readonly cfg: MqttSourceConfig,
    private readonly ctx: SourceContext,
  ) {
    this.id = ctx.id;
    this.rejectWarn = new ThrottledWarn(ctx.log);
  }

  async start(): Promise<void> {
    const log = this.ctx.log;
    // A full disk fails every message: one line per minute with the count, not a stack trace each.
    const commitFailed = new RepeatedLog(log, 'error', 'could not commit readings; dropping the connection so the broker redelivers');
    this.commitFailed = commitFailed;
    const options: IClientOptions = {
      ...MQTT_CLIENT_MEMORY,
      protocolVersion: 5,
      clean: false,
      clientId: this.cfg.client_id,
      keepalive: this.cfg.keepalive_s,
      reconnectPeriod: 2000,
      connectTimeout: 10_000,
      resubscribe: false,
      properties: {
        sessionExpiryInterval: this.cfg.session_expiry_s,
        maximumPacketSize: this.cfg.max_payload_bytes + 64 * 1024,
        // MQTT 5 Receive Maximum [MQTT-3.3.4-7]: the broker keeps at most this many QoS 1
        // messages unacknowledged with us, which bounds memory while commits are pending.
        receiveMaximum: this.cfg.max_inflight,
      },
      customHandleAcks: (topic, payload, packet, done) => {
        const deferred = this.pubacks?.supported === true && packet.messageId !== undefined;
        // Half of max_inflight: see below. A message after which reading stops waits for its commit
        // with nothing more coming to fill the group: it is committed at once, not after
        // store.commit_interval_ms (the interval held such a message, and the next 500 behind it,
        // for up to the whole interval: the bench's ack max of ~1,030 ms).
        const readAhead = Math.max(1, Math.floor(this.cfg.max_inflight / 2));
        const gates = deferred && this.uncommitted + 1 > readAhead;
        const commit = this.handleMessage(topic, payload, packet.messageId, packet.dup, gates);
        const onFailure = (err: Error) => {
          // Not committed, so no PUBACK: the broker keeps the message and redelivers it after we reconnect.
          this.lastError = `store: ${err.message}`;
          commitFailed.report(err, { topic });
          setTimeout(() => this.pubacks?.dropConnection(), 1000);
        };
        if (deferred && this.pubacks && packet.messageId !== undefined) {
          this.pubacks.track(packet.messageId, commit);
          commit.catch(onFailure);
          this.uncommitted++;
          const settled = () => {
            this.uncommitted--;
          };
          commit.then(settled, settled);
          // Half of max_inflight: the redelivery guard keeps 4 x max_inflight rows, and the rest
          // covers PUBACKs written but lost with the connection (about 2,200 redeliveries per cut
          // were recognised with the whole of max_inflight here, and as many with half of it under
          // load, against a 2,000-row guard: store/redelivery-guard.ts).
          if (!gates) {
            done(0);
            return;
          }
          // More messages waiting for their commit than that: the broker does not hold to
          // Receive Maximum [MQTT-3.3.4-9] (mosquitto 2.0.11 sends its whole queue: 33,180 PUBLISH on one
          // connection against 3,873 PUBACKs, measured through a relay). Read on only once this commit
          // settled, so TCP holds the broker back. Otherwise the agent reads the broker's whole queue
          // into memory, and what is received but not yet committed when the connection drops (tens of
          // thousands under load) is committed afterwards and redelivered, far more than the redelivery
          // guard keeps (store/redelivery-guard.ts, sized for max_inflight): readings the budget had
          // dropped meanwhile were stored a second time.
          this.noteReadingPaused(readAhead);
          // If the connection closed meanwhile, mqtt.js is not told to go on: it would hand us what it
          // had already parsed from the dead connection (no DUP flag) after the broker's redeliveries of
          // the same messages on the new one, and those would be taken as new (one run of
          // test/integration/mqtt-redelivery-budget.test.ts stored 500 twice without this check). The
          // broker sends all of them again anyway.
          const epoch = this.pubacks.epoch;
          const next = () => {
            if (this.pubacks?.epoch === epoch) done(0);
          };
          commit.then(next, next);
          return;
        }
        commit.then(
          () => done(0),
          (err: Error) => {
            onFailure(err);
            done(err);
          },
        );
      },
    };
    Object.assign(options, brokerConnectOptions(this.cfg, this.id, this.ctx.resolvePath, log));

    const client = mqtt.connect(this.cfg.url, options);
    this.client = client;
    disableNagle(client);
    this.pubacks = new DeferredPubacks(client);
    if (!this.pubacks.supported) log.warn({ reason: this.pubacks.reason }, 'PUBACK deferral unavailable: acknowledging one message per commit (slower, still durable)');
    client.on('connect', (connack) => {
      this.connected = true;
      log.info({ url: this.cfg.url, session_present: connack.sessionPresent }, 'connected to broker');
      this.noteSession(connack.sessionPresent === true);
      client.subscribe(this.cfg.topics, { qos: 1 }, (err, granted) => {
        if (err) {
          this.lastError = `subscribe: ${err.message}`;
          log.error({ err, topics: this.cfg.topics }, 'subscribe failed');
          return;
        }
        // Until the SUBACK, a new session has no subscription and the broker drops what sensors publish.
        log.info({ topics: this.cfg.topics, session_present: connack.sessionPresent }, 'subscribed with QoS 1');
        this.markSubscribed();
        for (const g of granted ?? []) {
          if (g.qos !== 1) {
            this.lastError = `broker granted ${g.topic} with code ${g.qos}, not QoS 1`;
            log.error({ topic: g.topic, granted: g.qos }, 'broker did not grant QoS 1: readings on this filter are not durable end to end');
          }
        }
      });
    });
    client.on('close', () => {
      if (this.connected && !this.stopping) log.warn({ url: this.cfg.url }, 'broker connection closed; reconnecting');
      this.connected = false;
    });
    client.on('error', (err) => {
      const text = describeTlsError(err) ?? err.message;
      // The same error at every reconnect is logged once at warn, then at debug.
      log[text === this.lastError ? 'debug' : 'warn']({ err: text, url: this.cfg.url }, 'mqtt error');
      this.lastError = text;
    });
  }

  private async handleMessage(topic: string, payload: Buffer, messageId: number | undefined, dup: boolean, commitNow: boolean): Promise<void> {
    this.lastMessageAt = Date.now();
    // The session was alive at least until now (for the "away longer than session_expiry_s" test).
    if (this.lastMessageAt - this.sessionNotedAt > 60_000) {
      this.sessionNotedAt = this.lastMessageAt;
      this.ctx.memo?.set('session_seen_at', String(this.lastMessageAt));
    }
    const filter = this.cfg.topics.find((f) => topicMatches(f, topic)) ?? topic;
    let result: ParseResult;
    if (payload.length > this.cfg.max_payload_bytes) {
      result = { readings: [], rejections: [{ reason: `payload of ${payload.length} bytes exceeds max_payload_bytes ${this.cfg.max_payload_bytes}` }] };
    } else {
      const now = Date.now();
      result = parsePayload(payload, { defaultSensor: sensorFromTopic(filter, topic), nowMs: now, clockSynced: this.ctx.clock.isSynced(now) }, this.cfg.fields);
    }
    const rejected = result.rejections.map((r) => r.reason);
    if (rejected.length > 0) {
      this.stats.rejected += rejected.length;
      // Counted every time; logged at most once a minute per topic, with an excerpt to recognise it by.
      this.rejectWarn.warn(topic, { topic, reasons: rejected.slice(0, 5), payload_bytes: payload.length, excerpt: excerpt(payload) }, 'rejected payload');
    }
    const fingerprint = messageId === undefined ? undefined : createHash('sha256').update(topic).update('\0').update(payload).digest();
    const sub = {
      source: this.id,
      readings: result.readings,
      rejected,
      trackSeq: true,
      // MQTT does not tell a subscriber who published; the topic branch is the nearest thing to a sender (README "Guarding the edge").
      origin: topicBranch(topic),
      bytes: payload.length,
      // A QoS 1 message redelivered after a lost PUBACK keeps its packet id and DUP is set [MQTT-3.3.1-1].
      ...(messageId !== undefined && fingerprint ? { resend: { key: String(messageId), fingerprint, resent: dup } } : {}),
      ...(commitNow ? { commitWithinMs: 0 } : {}),
    };
    const r = await this.ctx.sink.submit(sub);
    this.commitFailed?.recovered();
    this.stats.accepted += r.accepted;
    this.stats.duplicates += r.duplicates;
  }

  /** Once per run: not a fault, but why MQTT throughput follows the commits from here on. */
  private noteReadingPaused(readAhead: number): void {
    if (this.readingPausedNoted) return;
    this.readingPausedNoted = true;
    this.ctx.log.info(
      { url: this.cfg.url, read_ahead: readAhead, max_inflight: this.cfg.max_inflight },
      'commits lag behind the broker: the next MQTT message is read only once the earlier ones are committed (keeps what a reconnect redelivers within the redelivery guard)',
    );
  }

  /**
   * [MQTT-3.2.2-2]: session_present false on a reconnect means the broker no longer has our
   * persistent session, and with it the QoS 1 messages it was holding for us: readings lost
   * before they reached the agent. A warning, a counter, a /healthz reason and an event, never
   * just an info line. "Before" is remembered across restarts (memo), so a broker that lost the
   * session while the agent was down is noticed too.
   */
  private noteSession(present: boolean): void {
    const now = Date.now();
    const before = this.ctx.memo?.get('session_seen_at');
    this.ctx.memo?.set('session_seen_at', String(now));
    if (present || before === undefined) return;
    const lastSeen = Number(before);
    const expired = now - lastSeen > this.cfg.session_expiry_s * 1000;
    this.lossAt = now;
    this.loss = `broker ${this.cfg.url} had no session for client_id ${this.cfg.client_id} (session_present false): messages it queued for us are lost${
      expired ? ` (the agent was away longer than session_expiry_s ${this.cfg.session_expiry_s})` : '; check the broker keeps sessions: persistence true with a persistence_location its user can write (README, Broker settings)'
    }`;
    this.ctx.log.warn({ url: this.cfg.url, client_id: this.cfg.client_id, last_connected: new Date(lastSeen).toISOString(), expired }, 'broker lost the persistent session: QoS 1 messages queued for the agent are gone');
    this.ctx.event?.(
      { kind: 'source.session_lost', key: this.id, ts: now, detail: { broker: this.cfg.url.slice(0, 256), session_expiry_s: this.cfg.session_expiry_s, last_connected_ms: lastSeen, expired } },
      'session_lost',
    );
  }

  /** Ready once the first SUBACK arrived: from then on the broker keeps what sensors publish for us. */
  ready(): Promise<void> {
    return this.subscribed;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const client = this.client;
    if (!client) return;
    await new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
    this.connected = false;
  }

  health(): SourceHealth {
    const h: SourceHealth = { type: 'mqtt', connected: this.connected, endpoint: `${this.cfg.url} ${this.cfg.topics.join(' ')}`, ...this.stats };
    if (this.lastMessageAt !== undefined) h.lastMessageAt = this.lastMessageAt;
    if (this.lastError !== undefined) h.lastError = this.lastError;
    if (this.lossAt !== undefined) {
      h.lossAt = this.lossAt;
      h.loss = this.loss!;
    }
    return h;
  }
}

/** A topic without its last level (`sensors/plant/p1` → `sensors/plant`): the branch a publisher writes under, at most 256 characters. */
export function topicBranch(topic: string): string {
  const cut = topic.lastIndexOf('/');
  return (cut > 0 ? topic.slice(0, cut) : topic).slice(0, 256);
}
