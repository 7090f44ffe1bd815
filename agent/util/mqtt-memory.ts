import type { IClientOptions } from 'mqtt';

/**
 * mqtt.js options every client of the agent and receiver uses. `writeCache: false`: mqtt-packet
 * otherwise pre-builds a 2-byte Buffer for each of the 65,536 packet ids and keeps them for the
 * process's life: 6.2 MB of live heap in a heap snapshot of a running agent (65,541 Buffers held
 * by its `numCache`), against one 2-byte Buffer per PUBACK without it. The switch is global to
 * mqtt-packet, so every client sets it alike.
 */
export const MQTT_CLIENT_MEMORY: Pick<IClientOptions, 'writeCache'> = { writeCache: false };
