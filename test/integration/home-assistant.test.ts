import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { tempDir } from '../helpers/setup.js';

/** mosquitto_sub -v on a filter, as an operator would watch it: "topic payload" lines. */
function subscribe(broker: Broker, filter: string): { proc: ChildProcess; messages(): Map<string, string>; lines(): string[] } {
  const proc = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(broker.port), '-v', '-q', '1', '-t', filter], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let rest = '';
  proc.stdout!.on('data', (d: Buffer) => {
    const parts = (rest + d.toString()).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  const messages = () => new Map(lines.map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]));
  return { proc, messages, lines: () => lines };
}

describe('Home Assistant MQTT discovery (real mosquitto, mosquitto_sub)', () => {
  let broker: Broker;
  let agent: LongRunning | undefined;
  const subs: ChildProcess[] = [];
  const A = tempDir('ha');

  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    for (const s of subs) s.kill();
    await agent?.stop();
    await broker?.stop();
  });

  it('announces the agent and its sensors within 10 s, publishes states, and goes offline when killed', async () => {
    const init = cli(['init', '--data-dir', A, '--no-http', '--mqtt-url', broker.url, '--mqtt-topic', 'sensors/#', '--ha-discovery']);
    expect(init.code, init.stderr).toBe(0);
    const device = /device id (did:key:\w+)/.exec(init.stdout)![1]!;
    const node = `edge_agent_${device.slice(-12)}`;
    const ha = subscribe(broker, 'homeassistant/#');
    const states = subscribe(broker, `edge-agent/${node}/#`);
    subs.push(ha.proc, states.proc);
    agent = cliBackground(['run', '--data-dir', A]);
    const started = Date.now();
    await agent.waitForReady();
    const ready = Date.now();
    // Within 10 s of the agent being up (its start itself takes seconds on a loaded CI machine).
    const agentConfig = await waitFor('the agent entity announced', () => ha.messages().get(`homeassistant/sensor/${node}/agent_pending_batches/config`), 10_000, 20);
    console.log(`home assistant discovery: announced ${Date.now() - started} ms after start, ${Date.now() - ready} ms after ready`);
    expect(Date.now() - ready).toBeLessThan(10_000);
    expect(JSON.parse(agentConfig)).toMatchObject({ availability_topic: `edge-agent/${node}/availability`, device: { identifiers: [node] } });
    await waitFor('online', () => states.messages().get(`edge-agent/${node}/availability`) === 'online');

    execFileSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-q', '1', '-t', 'sensors/boiler', '-m', '[{"n":"boiler/temp","u":"Cel","v":61.5}]']);
    const sensorConfig = JSON.parse(await waitFor('the sensor announced', () => ha.messages().get(`homeassistant/sensor/${node}/boiler_temp/config`), 20_000)) as Record<string, unknown>;
    expect(sensorConfig).toMatchObject({ name: 'boiler/temp', unit_of_measurement: '°C', device_class: 'temperature', state_topic: `edge-agent/${node}/sensor/boiler/temp`, value_template: '{{ value_json.value }}' });
    const state = await waitFor('the sensor state', () => states.messages().get(`edge-agent/${node}/sensor/boiler/temp`), 20_000);
    expect(JSON.parse(state)).toMatchObject({ value: 61.5, unit: 'Cel' });

    agent.proc.kill('SIGKILL');
    await waitFor('offline by the last will', () => states.messages().get(`edge-agent/${node}/availability`) === 'offline', 20_000);
  }, 90_000);
});
