import { afterAll, beforeAll } from 'vitest';
import { startMosquitto, type Broker } from './mosquitto.js';
import { startReceiverProcess, tempDir, type RunningReceiver } from './setup.js';

export interface BrokerAndReceiver {
  broker: Broker;
  receiver: RunningReceiver;
}

/**
 * The peers most agent scenarios share, started once per test file: a real mosquitto and the
 * reference receiver (`edge-agent receive`, bound to a port it chose itself), both stopped by PID
 * after the file's tests. `use` hands them to the file's own variables:
 *
 *   let broker: Broker;
 *   let receiver: RunningReceiver;
 *   useBrokerAndReceiver('reload-receiver', (p) => ({ broker, receiver } = p));
 */
/** `brokerConfig`: extra mosquitto.conf lines (e.g. `sys_interval 1`). */
export function useBrokerAndReceiver(receiverDirPrefix: string, use: (peers: BrokerAndReceiver) => void, brokerConfig: string[] = []): void {
  let peers: Partial<BrokerAndReceiver> = {};
  beforeAll(async () => {
    peers.broker = await startMosquitto(brokerConfig);
    peers.receiver = await startReceiverProcess(tempDir(receiverDirPrefix));
    use(peers as BrokerAndReceiver);
  });
  afterAll(async () => {
    await peers.receiver?.proc.stop();
    await peers.broker?.stop();
    peers = {};
  });
}
