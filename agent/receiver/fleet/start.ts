import type { ReceiverOptions, RunningReceiver } from '../server.js';
import { startReceiver } from '../server.js';
import { FleetBackend } from './fleet-backend.js';
import { fleetOptionsFromFlags, type FleetFlags } from './flags.js';

/** MQTT v5 shared subscription group: each batch goes to one replica of the group. */
export const SHARED_GROUP = 'edge-receivers';

/**
 * One stateless fleet replica: the receiver's own HTTP API and MQTT bridge over the fleet
 * backend. Replicas share the MQTT work through a shared subscription ($share/GROUP/FILTER,
 * MQTT 5.0 §4.8.2), each with its own client id.
 */
export async function startFleetReceiver(flags: FleetFlags, opts: ReceiverOptions): Promise<RunningReceiver> {
  const fleetOpts = fleetOptionsFromFlags(flags, opts.dataDir, opts.logger);
  const backend = await FleetBackend.open(fleetOpts);
  const maxBodyBytes = Math.min(opts.maxBodyBytes ?? Number.POSITIVE_INFINITY, backend.maxEnvelopeBytes, 8 * 1024 * 1024);
  const mqtt = opts.mqtt && {
    ...opts.mqtt,
    topic: opts.mqtt.topic.startsWith('$share/') ? opts.mqtt.topic : `$share/${SHARED_GROUP}/${opts.mqtt.topic}`,
    clientId: opts.mqtt.clientId ?? `edge-agent-receiver-${fleetOpts.replicaName}`.slice(0, 64),
  };
  try {
    return await startReceiver({ ...opts, maxBodyBytes, ...(mqtt ? { mqtt } : {}), backend: { store: backend, identity: fleetOpts.identity, durability: 'quorum' } });
  } catch (err) {
    await backend.close();
    throw err;
  }
}
