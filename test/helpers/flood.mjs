// A remote operator gone wild, as its own process: publishes N messages at a rate to one topic,
// collects the gateway's answers, and prints what it sent and what came back (JSON, one line).
// node test/helpers/flood.mjs URL TOPIC RESULT_TOPIC COUNT RATE_PER_S KIND(config|output)
import mqtt from 'mqtt';

const [url, topic, resultTopic, countS, rateS, kind] = process.argv.slice(2);
const count = Number(countS);
const rate = Number(rateS);
const client = await mqtt.connectAsync(url, { clientId: `flood-${process.pid}`, reconnectPeriod: 200 });
const answers = new Map();
client.on('message', (_t, payload) => {
  try {
    const m = JSON.parse(payload.toString());
    if (typeof m.requestId === 'string' && m.requestId.startsWith('flood-')) answers.set(m.requestId, m);
  } catch {
    /* not ours */
  }
});
await client.subscribeAsync(resultTopic, { qos: 1 });
const body = (i) =>
  kind === 'config'
    ? { requestId: `flood-${kind}-${i}`, patch: { rules: { dustAlarm: { pm10: { warn: 150 + (i % 40) } } } } }
    : { requestId: `flood-${kind}-${i}`, output: 'sweepStopSignal', state: i % 2 ? 'on' : 'off', durationS: 5 };
const t0 = Date.now();
let sent = 0;
await new Promise((resolve) => {
  const step = setInterval(() => {
    const due = Math.min(count, Math.floor(((Date.now() - t0) / 1000) * rate));
    while (sent < due) {
      client.publish(topic, JSON.stringify(body(sent)), { qos: 1 });
      sent++;
    }
    if (sent >= count) {
      clearInterval(step);
      resolve();
    }
  }, 5);
});
const sentMs = Date.now() - t0;
const deadline = Date.now() + 30_000;
while (answers.size < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
const codes = {};
let ok = 0;
for (const a of answers.values()) {
  if (a.ok) ok++;
  else {
    const code = a.error?.code ?? String(a.errors?.[0]?.message ?? '').split(':')[0];
    codes[code] = (codes[code] ?? 0) + 1;
  }
}
const missing = [];
for (let i = 0; i < count && missing.length < 20; i++) if (!answers.has(`flood-${kind}-${i}`)) missing.push(i);
process.stdout.write(`${JSON.stringify({ sent, sentMs, answered: answers.size, ok, codes, missing })}\n`);
await client.endAsync(true);
