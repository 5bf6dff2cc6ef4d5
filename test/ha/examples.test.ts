/**
 * Every Home Assistant example, with the real Home Assistant nodes connected to a simulated Home
 * Assistant: the states the test sets reach the flow as Home Assistant events, and what the example
 * does arrives at Home Assistant as action calls.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { NodeMessage } from '../../nodes/red/api';
import { ManualClock } from '../support/harness';
import { type FlowNode, HaRun, haExamples, useHa, waitFor } from './support';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const NOTIFY = 'notify.mobile_app_your_phone';
const SET_VALUE = 'input_number.set_value';
const GATE = 'leak: 1 per 4 h, quiet start, summary';

/** A local weather API (the examples' Open-Meteo URL is pointed here). */
class WeatherApi {
  requests = 0;
  temperature = 21.5;
  private server = http.createServer((_req, res) => {
    this.requests++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ current: { temperature_2m: this.temperature, time: '2026-06-01T10:00' } }));
  });
  url = '';
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/forecast`;
  }
  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Points a ttl-fetch node of the example at the local weather API. */
function localWeather(api: WeatherApi) {
  return (n: FlowNode) => {
    if (n.type === 'ttl-fetch') n.url = api.url;
  };
}

/** Sets a binary sensor off, then on: the state node's `on` event. */
function turnOn(run: HaRun, entity: string): void {
  run.ha.setState(entity, 'off');
  run.ha.setState(entity, 'on');
}

function reasonOf(msg: NodeMessage): string | undefined {
  return (msg.cooldown as { reason?: string } | undefined)?.reason;
}

describe('Home Assistant examples against a simulated Home Assistant', () => {
  const clock = new ManualClock();
  const ctx = useHa(clock);
  const api = new WeatherApi();
  before(() => api.start());
  after(() => api.stop());

  const scenarios: Record<string, (run: HaRun) => Promise<void>> = {
    async 'home-assistant/leak-notification.json'(run) {
      const { ha } = run;
      ha.setState('binary_sensor.water_leak', 'off');
      await run.load();
      const held = run.out('held back');
      ha.setState('binary_sensor.water_leak', 'on');
      await waitFor(() => ha.delivered(NOTIFY).length === 1, 'the leak notification');
      const [call] = ha.delivered(NOTIFY);
      assert.deepEqual(call.data, { title: 'Alert', message: 'Water leak detected: binary_sensor.water_leak' });

      clock.advance(10 * MINUTE);
      turnOn(run, 'binary_sensor.water_leak');
      const [repeat] = await held.until(1);
      assert.equal((repeat.cooldown as { remaining: number }).remaining, 4 * HOUR - 10 * MINUTE);

      clock.advance(4 * HOUR);
      turnOn(run, 'binary_sensor.water_leak');
      await waitFor(() => ha.delivered(NOTIFY).length === 2, 'the notification after the 4 hours');
      assert.equal(held.received.length, 1);
    },

    async 'home-assistant/leak-alarm-quiet-start-summary.json'(run) {
      const { ha } = run;
      ha.setState('binary_sensor.kitchen_leak', 'off');
      ha.setState('binary_sensor.bath_leak', 'off');
      await run.start();
      const quiet = run.quietRestarted(GATE);
      await run.ready();
      await quiet;
      const held = run.out('held back (msg.cooldown.reason)');
      // in the quiet minute after the start (and the first connection), an `on` is held
      ha.setState('binary_sensor.kitchen_leak', 'on');
      assert.equal(reasonOf((await held.until(1))[0]), 'startup');

      run.advance(61_000);
      turnOn(run, 'binary_sensor.kitchen_leak');
      await waitFor(() => ha.delivered(NOTIFY).length === 1, 'the first leak alarm');
      assert.deepEqual(ha.delivered(NOTIFY)[0].data, { title: 'Leak', message: 'Water leak: binary_sensor.kitchen_leak' });
      turnOn(run, 'binary_sensor.bath_leak');
      await waitFor(() => ha.delivered(NOTIFY).length === 2, 'the bath alarm');

      clock.advance(MINUTE);
      turnOn(run, 'binary_sensor.kitchen_leak');
      turnOn(run, 'binary_sensor.kitchen_leak');
      const msgs = await held.until(3);
      assert.deepEqual(msgs.slice(1).map(reasonOf), ['cooldown', 'cooldown']);

      // after the 4 hours: one summary of the two held back
      run.advance(4 * HOUR);
      await waitFor(() => ha.delivered(NOTIFY).length === 3, 'the summary');
      const summary = ha.delivered(NOTIFY)[2].data as { title: string; message: string };
      assert.equal(summary.title, 'Leak (summary)');
      assert.match(summary.message, /2 more for binary_sensor\.kitchen_leak/);
    },

    async 'home-assistant/sms-budget.json'(run) {
      const { ha } = run;
      const sensors = ['binary_sensor.kitchen_leak', 'binary_sensor.smoke_detector', 'binary_sensor.front_door'];
      for (const s of sensors) ha.setState(s, 'off');
      await run.load();
      const over = run.out('over budget (not sent)');
      for (let i = 0; i < 21; i++) {
        turnOn(run, sensors[i % 3]);
        await waitFor(() => ha.calls.length + over.received.length === i + 1, `alarm ${i + 1} decided`);
      }
      assert.equal(ha.delivered('notify.twilio_sms').length, 20);
      assert.equal(reasonOf(over.received[0]), 'limit');
      assert.deepEqual(ha.delivered('notify.twilio_sms')[0].data, { message: 'Alarm: binary_sensor.kitchen_leak', target: ['+15550100'] });

      // the next calendar day has a full budget again
      clock.advance(24 * HOUR);
      turnOn(run, sensors[0]);
      await waitFor(() => ha.delivered('notify.twilio_sms').length === 21, 'the first SMS of the next day');
    },

    async 'home-assistant/presence-on-change.json'(run) {
      const { ha } = run;
      ha.setState('person.alice', 'home', { friendly_name: 'Alice' });
      ha.setState('person.bob', 'not_home', { friendly_name: 'Bob' });
      await run.load();
      // the first connection: each person's state, announced once
      await waitFor(() => ha.delivered(NOTIFY).length === 2, 'the states at the first connection');
      assert.deepEqual(
        ha
          .delivered(NOTIFY)
          .map((c) => c.data.message)
          .sort(),
        ['Alice is now home', 'Bob is now not_home'],
      );

      run.advance(2000); // past the gate's cooldown of 1 s
      ha.setState('person.alice', 'not_home');
      await waitFor(() => ha.delivered(NOTIFY).length === 3, 'Alice leaving');
      assert.equal(ha.delivered(NOTIFY)[2].data.message, 'Alice is now not_home');

      // a Node-RED restart: the states are read again, nothing changed, nothing announced
      run.advance(2000);
      await run.restart();
      const heldAfterRestart = run.out('unchanged (held back)');
      await heldAfterRestart.until(2);
      assert.equal(ha.delivered(NOTIFY).length, 3);

      // Home Assistant restarts; Alice comes home meanwhile (no event reaches the nodes while it starts)
      run.advance(2000);
      ha.beginRestart();
      await waitFor(() => ha.connections >= 3, 'the reconnect');
      ha.setState('person.alice', 'home', { friendly_name: 'Alice' });
      ha.setState('person.bob', 'not_home', { friendly_name: 'Bob' });
      ha.finishStart();
      await waitFor(() => ha.delivered(NOTIFY).length === 4, 'the change made while Home Assistant restarted');
      assert.equal(ha.delivered(NOTIFY)[3].data.message, 'Alice is now home');
      await heldAfterRestart.until(3);
      assert.equal(reasonOf(heldAfterRestart.received[2]), 'unchanged', 'Bob did not change');
    },

    async 'home-assistant/cached-weather.json'(run) {
      const { ha } = run;
      ha.setState('input_number.outdoor_temperature', '0', { min: -50, max: 60, step: 0.1 });
      await run.load({ change: localWeather(api) });
      run.inject('every minute');
      await waitFor(() => run.values(SET_VALUE).length === 1, 'the temperature written');
      assert.deepEqual(run.values(SET_VALUE), [21.5]);
      assert.equal(ha.state('input_number.outdoor_temperature')?.state, '21.5');
      clock.advance(MINUTE);
      api.temperature = 25;
      run.inject('every minute');
      await waitFor(() => run.values(SET_VALUE).length === 2, 'the cached temperature written');
      assert.deepEqual(run.values(SET_VALUE), [21.5, 21.5], 'the second minute is answered from the cache');
      assert.equal(api.requests, 1);
      clock.advance(30 * MINUTE);
      run.inject('every minute');
      await waitFor(() => run.values(SET_VALUE).length === 3, 'the fresh temperature written');
      assert.equal(run.values(SET_VALUE)[2], 25);
    },

    async 'home-assistant/daily-counter.json'(run) {
      const { ha } = run;
      ha.setState('binary_sensor.front_door', 'off');
      ha.setState('input_number.door_openings_today', '0', { min: 0, max: 1000, step: 1 });
      await run.load();
      turnOn(run, 'binary_sensor.front_door');
      await waitFor(() => run.values(SET_VALUE).length === 1, 'the first count');
      turnOn(run, 'binary_sensor.front_door');
      await waitFor(() => run.values(SET_VALUE).length === 2, 'the second count');
      clock.advance(26 * HOUR);
      turnOn(run, 'binary_sensor.front_door');
      await waitFor(() => run.values(SET_VALUE).length === 3, 'the count of the next day');
      assert.deepEqual(run.values(SET_VALUE), [1, 2, 1]);
      assert.equal(ha.state('input_number.door_openings_today')?.state, '1');
    },

    async 'home-assistant/deferred-store.json'(run) {
      const { ha } = run;
      ha.setState('sensor.grid_power', '0');
      ha.setState('input_number.grid_power_5min', '0', { min: 0, max: 30000, step: 1 });
      await run.load();
      for (const watts of ['1500', '1720']) {
        const before = run.statusCount('keep latest');
        ha.setState('sensor.grid_power', watts);
        await waitFor(() => run.statusCount('keep latest') > before, `${watts} W kept`);
      }
      run.inject('every 5 minutes');
      await waitFor(() => run.values(SET_VALUE).length === 1, 'the latest power written');
      assert.deepEqual(run.values(SET_VALUE), [1720]);
    },

    async 'home-assistant/energy-stats.json'(run) {
      const { ha } = run;
      ha.setState('sensor.power_usage', '1.25');
      ha.setState('input_number.energy_total_kwh', '0', { min: 0, max: 1_000_000, step: 0.01 });
      // the poll-state node asks every hour; here every 100 ms, the readings it sends are what counts
      await run.load({
        change: (n) => {
          if (n.type === 'poll-state') Object.assign(n, { updateInterval: '0.1', updateIntervalUnits: 'seconds' });
        },
      });
      const errors = run.out('error: stats unchanged');
      const totals = () => run.values(SET_VALUE) as number[];
      await waitFor(() => totals().length >= 3, 'hourly readings added');
      // each reading adds 1.25 kWh to the stored total (0.80.3's poll-state may send its very first two readings at once)
      assert.equal(totals()[2] - totals()[1], 1.25);
      assert.equal(totals()[0], 1.25);
      ha.setState('sensor.power_usage', 'unavailable');
      await errors.until(1);
      const before = totals().length;
      const lastGood = totals()[before - 1];
      ha.setState('sensor.power_usage', '2');
      await waitFor(() => totals().length > before, 'a reading after the bad one');
      assert.equal(totals()[before], lastGood + 2, 'the bad reading left the stats intact');
      assert.match((errors.received[0].error as { message: string }).message, /bad reading "unavailable"/);
    },

    async 'home-assistant/expiring-entries.json'(run) {
      const { ha } = run;
      ha.setState('binary_sensor.front_door', 'off');
      ha.setState('person.alice', 'not_home');
      ha.setState('light.hall', 'off');
      await run.load();
      turnOn(run, 'binary_sensor.front_door');
      await waitFor(() => ha.delivered(NOTIFY).length === 1, 'the door notification');

      const arrived = run.statusCount('arrived recently (600 s)');
      ha.setState('person.alice', 'home');
      await waitFor(() => run.statusCount('arrived recently (600 s)') > arrived, 'the arrival stored');
      clock.advance(5 * MINUTE);
      turnOn(run, 'binary_sensor.front_door');
      await waitFor(() => ha.delivered('light.turn_on').length === 1, 'the hall light');
      assert.deepEqual(ha.delivered('light.turn_on')[0].target, { entity_id: 'light.hall' });

      clock.advance(5 * MINUTE);
      turnOn(run, 'binary_sensor.front_door');
      await waitFor(() => ha.delivered(NOTIFY).length === 2, 'the notification once the arrival expired');
      assert.equal(ha.delivered('light.turn_on').length, 1);
    },

    async 'home-assistant/motion-counter.json'(run) {
      const { ha } = run;
      ha.setState('binary_sensor.motion', 'off');
      ha.setState('input_number.motion_count', '0', { min: 0, max: 1_000_000, step: 1 });
      await run.load();
      for (let i = 1; i <= 3; i++) {
        turnOn(run, 'binary_sensor.motion');
        await waitFor(() => run.values(SET_VALUE).length === i, `motion ${i} counted`);
      }
      await run.restart();
      turnOn(run, 'binary_sensor.motion');
      await waitFor(() => run.values(SET_VALUE).length === 4, 'the motion after a restart counted');
      assert.deepEqual(run.values(SET_VALUE), [1, 2, 3, 4], 'the count survives a Node-RED restart');
    },
  };

  it('has a scenario for every Home Assistant example', () => {
    assert.deepEqual(haExamples(), Object.keys(scenarios).sort());
  });

  for (const name of haExamples()) {
    it(`${name} does what its comment says`, async () => {
      const scenario = scenarios[name];
      assert.ok(scenario, `no scenario for ${name}`);
      await scenario(new HaRun(name, ctx.ha, clock));
    });
  }
});
