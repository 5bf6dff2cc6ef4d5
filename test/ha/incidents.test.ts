/**
 * The seams between the gate and Home Assistant, with the real Home Assistant nodes and a simulated
 * Home Assistant: a refused or undeliverable notification, a dropped connection at the moment of an
 * alarm, Home Assistant restarting with a sensor still wet, a first connection that comes late.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import type { NodeMessage } from '../../nodes/red/api';
import { ManualClock } from '../support/harness';
import { HaRun, useHa, waitFor } from './support';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const NOTIFY = 'notify.mobile_app_your_phone';
const SMS = 'notify.twilio_sms';
const LEAK = 'home-assistant/leak-notification.json';
const QUIET = 'home-assistant/leak-alarm-quiet-start-summary.json';
const QUIET_GATE = 'leak: 1 per 4 h, quiet start, summary';

function reasonOf(msg: NodeMessage): string | undefined {
  return (msg.cooldown as { reason?: string } | undefined)?.reason;
}

function turnOn(run: HaRun, entity: string): void {
  run.ha.setState(entity, 'off');
  run.ha.setState(entity, 'on');
}

/** Resolves once `gate` has handled the release that a failed notification, after this call, sends back to it. */
function released(run: HaRun, gate: string): Promise<void> {
  return run.handled(gate, (msg) => msg.release === true);
}

/** Home Assistant restarts: the nodes reconnect while it starts, then it runs again. */
async function restartHomeAssistant(run: HaRun, whileStarting?: () => void): Promise<void> {
  const connections = run.ha.connections;
  run.ha.beginRestart();
  await waitFor(() => run.ha.connections > connections, 'the reconnect to the restarting Home Assistant');
  whileStarting?.();
  run.ha.finishStart();
  await run.ready();
}

describe('Home Assistant incidents', () => {
  const clock = new ManualClock();
  const ctx = useHa(clock);

  for (const name of [LEAK, QUIET]) {
    it(`${name}: a refused notification is followed by exactly one delivered alarm once Home Assistant accepts again, within the cooldown`, async () => {
      const { ha } = ctx;
      ha.setState('binary_sensor.water_leak', 'off');
      ha.setState('binary_sensor.kitchen_leak', 'off');
      const run = new HaRun(name, ha, clock);
      await run.load();
      const gate = name === LEAK ? 'once per 4 hours' : QUIET_GATE;
      const sensor = name === LEAK ? 'binary_sensor.water_leak' : 'binary_sensor.kitchen_leak';
      if (name === QUIET) run.advance(61_000);

      // the action refused, as Home Assistant does for an action name left as imported
      const failed = run.out('notify failed (msg.error)');
      ha.refuse(NOTIFY, { times: 1 });
      const release = released(run, gate);
      ha.setState(sensor, 'on');
      await release;
      assert.equal(ha.calls.length, 1);
      assert.equal(ha.calls[0].refused, `Action ${NOTIFY} not found.`);
      const [failure] = await failed.until(1);
      assert.match((failure.error as { message: string }).message, /not found/);

      // a minute later the sensor reports again: this alarm is delivered, the next one held
      run.advance(MINUTE);
      turnOn(run, sensor);
      await waitFor(() => ha.delivered(NOTIFY).length === 1, 'the alarm after the refused one');
      run.advance(MINUTE);
      turnOn(run, sensor);
      const held = run.out(name === LEAK ? 'held back' : 'held back (msg.cooldown.reason)');
      const [repeat] = await held.until(1);
      assert.equal(reasonOf(repeat) ?? 'cooldown', 'cooldown');
      assert.equal(ha.delivered(NOTIFY).length, 1, 'exactly one alarm delivered in the cooldown');
    });
  }

  it('sms-budget: a refused SMS does not count against the day’s 20', async () => {
    const { ha } = ctx;
    const sensors = ['binary_sensor.kitchen_leak', 'binary_sensor.smoke_detector', 'binary_sensor.front_door'];
    for (const s of sensors) ha.setState(s, 'off');
    const run = new HaRun('home-assistant/sms-budget.json', ha, clock);
    await run.load();
    const over = run.out('over budget (not sent)');
    ha.refuse(SMS, { times: 1 });
    const release = released(run, '20 SMS a day (all sensors)');
    turnOn(run, sensors[0]);
    await release;
    for (let i = 0; i < 21; i++) {
      run.advance(MINUTE);
      turnOn(run, sensors[i % 3]);
      await waitFor(() => ha.delivered(SMS).length + over.received.length === i + 1, `alarm ${i + 1} decided`);
    }
    assert.equal(ha.delivered(SMS).length, 20, 'twenty SMS delivered besides the refused one');
    assert.equal(ha.calls.filter((c) => c.refused).length, 1);
    assert.equal(over.received.length, 1);
    assert.equal(reasonOf(over.received[0]), 'limit');
  });

  it('leak-notification: the connection dropped at the moment of an alarm: the pass is released, the next alarm is delivered once', async () => {
    const { ha } = ctx;
    ha.setState('binary_sensor.water_leak', 'off');
    const run = new HaRun(LEAK, ha, clock);
    await run.load();
    ha.dropOnNextCall(NOTIFY);
    const release = released(run, 'once per 4 hours');
    ha.setState('binary_sensor.water_leak', 'on');
    await release;
    assert.deepEqual(
      ha.calls.map((c) => c.refused),
      ['connection lost'],
    );
    await run.ready();
    run.advance(MINUTE);
    turnOn(run, 'binary_sensor.water_leak');
    await waitFor(() => ha.delivered(NOTIFY).length === 1, 'the alarm after the reconnect');
    run.advance(MINUTE);
    turnOn(run, 'binary_sensor.water_leak');
    await run.out('held back').until(1);
    assert.equal(ha.delivered(NOTIFY).length, 1);
  });

  it('leak-notification: Home Assistant restarting with the sensor still wet: held within the cooldown, a reminder after it (as its comment says)', async () => {
    const { ha } = ctx;
    ha.setState('binary_sensor.water_leak', 'off');
    const run = new HaRun(LEAK, ha, clock);
    await run.load();
    const held = run.out('held back');
    ha.setState('binary_sensor.water_leak', 'on');
    await waitFor(() => ha.delivered(NOTIFY).length === 1, 'the alarm');

    run.advance(HOUR);
    await restartHomeAssistant(run);
    ha.setState('binary_sensor.water_leak', 'on'); // unavailable -> on
    const [again] = await held.until(1);
    assert.equal((again.data as { old_state: { state: string } }).old_state.state, 'unavailable');
    assert.equal(reasonOf(again) ?? 'cooldown', 'cooldown');
    assert.equal(ha.delivered(NOTIFY).length, 1, 'no second alarm within the cooldown');

    run.advance(3 * HOUR + 12 * MINUTE);
    await restartHomeAssistant(run);
    ha.setState('binary_sensor.water_leak', 'on');
    await waitFor(() => ha.delivered(NOTIFY).length === 2, 'the reminder after the cooldown');
  });

  it('leak-alarm-quiet-start-summary: Home Assistant restarting with a sensor still wet: no second alarm, in the cooldown or after it; the quiet time starts again at the reconnect', async () => {
    const { ha } = ctx;
    ha.setState('binary_sensor.kitchen_leak', 'off');
    ha.setState('binary_sensor.bath_leak', 'off');
    const run = new HaRun(QUIET, ha, clock);
    await run.load();
    const held = run.out('held back (msg.cooldown.reason)');
    run.advance(61_000);
    ha.setState('binary_sensor.kitchen_leak', 'on');
    await waitFor(() => ha.delivered(NOTIFY).length === 1, 'the alarm');

    // within the cooldown
    run.advance(HOUR);
    let quiet = run.quietRestarted(QUIET_GATE);
    await restartHomeAssistant(run);
    await quiet;
    ha.setState('binary_sensor.kitchen_leak', 'on');
    assert.equal(reasonOf((await held.until(1))[0]), 'startup');

    // after the cooldown: 4 h 12 min after the alarm
    run.advance(3 * HOUR + 11 * MINUTE);
    quiet = run.quietRestarted(QUIET_GATE);
    await restartHomeAssistant(run);
    await quiet;
    ha.setState('binary_sensor.kitchen_leak', 'on');
    const msgs = await held.until(2);
    assert.equal(reasonOf(msgs[1]), 'startup', 'the sensor back from unavailable in the quiet minute raises no alarm');
    assert.equal(ha.delivered(NOTIFY).length, 1);

    // once the quiet minute is over, a new `on` is a new incident
    run.advance(61_000);
    turnOn(run, 'binary_sensor.kitchen_leak');
    await waitFor(() => ha.delivered(NOTIFY).length === 2, 'the alarm of a new incident');
  });

  it('cached-weather: a first connection 5 s late: the value written before it is queued and written once Home Assistant is ready', async () => {
    const { ha } = ctx;
    const api = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ current: { temperature_2m: 18.5 } }));
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(api.address() as AddressInfo).port}/v1/forecast`;
      ha.setState('input_number.outdoor_temperature', '0', { min: -50, max: 60, step: 0.1 });
      await ha.stopListening();
      const run = new HaRun('home-assistant/cached-weather.json', ha, clock);
      await run.start({
        change: (n) => {
          if (n.type === 'ttl-fetch') n.url = url;
        },
      });
      await run.connecting();
      run.inject('every minute');
      await waitFor(() => /queued/.test(run.status('✎ input_number.outdoor_temperature').text ?? ''), 'the call queued');
      await ha.listen();
      // the Home Assistant nodes try again 5 s after a failed connection
      await run.ready(15_000);
      await waitFor(() => ha.delivered('input_number.set_value').length === 1, 'the queued value written');
      assert.equal(ha.state('input_number.outdoor_temperature')?.state, '18.5');
    } finally {
      api.closeAllConnections();
      await new Promise((resolve) => api.close(resolve));
    }
  });

  it('leak-alarm-quiet-start-summary: a first connection long after the start: the quiet time runs from the connection', async () => {
    const { ha } = ctx;
    ha.setState('binary_sensor.kitchen_leak', 'on');
    ha.setState('binary_sensor.bath_leak', 'off');
    await ha.stopListening();
    const run = new HaRun(QUIET, ha, clock);
    await run.start();
    const quiet = run.quietRestarted(QUIET_GATE);
    await run.connecting();
    run.advance(2 * MINUTE); // the start-up minute is long over when Home Assistant answers
    await ha.listen();
    await run.ready(15_000);
    await quiet;
    const held = run.out('held back (msg.cooldown.reason)');
    turnOn(run, 'binary_sensor.kitchen_leak');
    assert.equal(reasonOf((await held.until(1))[0]), 'startup');
    assert.equal(ha.delivered(NOTIFY).length, 0);
  });
});
