// The simplest thing that does a gateway's job, for the load bench (bench/gateway.ts, issue 17):
// poll N units over Modbus TCP once a second (modbus-serial, the same ten registers dustgate's
// cwt-weather-station driver reads), store each reading in SQLite (better-sqlite3, WAL, one
// transaction per cycle), publish what is stored as one QoS 1 message and delete it on the PUBACK.
// No rules, no page, no metrics. Plain JavaScript, run with plain `node` and the binary's flags.
//   node --max-semi-space-size=4 bench/bare-loop.mjs PORT UNITS MQTT_URL DB_FILE
// On SIGTERM it prints {"stored":n,"deleted":n,"left":n} and exits.
import ModbusRTU from 'modbus-serial';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';

const [port, units, url, file] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4], process.argv[5]];
const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE IF NOT EXISTS readings (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)');
const insert = db.prepare('INSERT INTO readings (body) VALUES (?)');
const pending = db.prepare('SELECT seq, body FROM readings WHERE seq > ? ORDER BY seq LIMIT 500').raw(true);
const del = db.prepare('DELETE FROM readings WHERE seq BETWEEN ? AND ?');
const storeAll = db.transaction((bodies) => {
  for (const b of bodies) insert.run(b);
});

const client = new ModbusRTU();
await client.connectTCP('127.0.0.1', { port });
client.setTimeout(500);
const broker = await mqtt.connectAsync(url, { clientId: 'bench-bare-loop' });

let stored = 0;
let deleted = 0;
let sentUpTo = 0;
let inFlight = 0;
function publish() {
  if (inFlight >= 16 || !broker.connected) return;
  const rows = pending.all(sentUpTo);
  if (!rows.length) return;
  const first = rows[0][0];
  const last = rows[rows.length - 1][0];
  sentUpTo = last;
  inFlight++;
  const payload = `{"gateway":"bench-bare","readings":[${rows.map((r) => `{"seq":${r[0]},${r[1].slice(1)}`).join(',')}]}`;
  broker.publish('bench/bare-loop/telemetry', payload, { qos: 1 }, (err) => {
    inFlight--;
    if (err) sentUpTo = Math.min(sentUpTo, first - 1);
    else deleted += del.run(first, last).changes;
    publish();
  });
}

const r = (x, k) => Math.round(x * k) / k;
async function cycle() {
  const bodies = [];
  for (let unit = 1; unit <= units; unit++) {
    try {
      client.setID(unit);
      const { data } = await client.readHoldingRegisters(0x01f4, 10);
      const s16 = (v) => (v > 0x7fff ? v - 0x10000 : v);
      const values = { windSpeed: r(data[0] * 0.01, 100), windLevel: data[1], windDirection: data[3], humidity: r(data[4] * 0.1, 10), temperature: r(s16(data[5]) * 0.1, 10), noise: r(data[6] * 0.1, 10), pm25: data[7], pm10: data[8], pressure: r(data[9] * 0.1, 10) };
      bodies.push(JSON.stringify({ ts: new Date().toISOString(), device: `d${unit}`, values }));
    } catch {
      bodies.push(JSON.stringify({ ts: new Date().toISOString(), device: `d${unit}`, values: {}, error: 'timeout' }));
    }
  }
  storeAll(bodies);
  stored += bodies.length;
  publish();
}

let running = true;
(async () => {
  while (running) {
    const t = Date.now();
    await cycle();
    await new Promise((res) => setTimeout(res, Math.max(0, 1000 - (Date.now() - t))));
  }
})();

process.on('SIGTERM', async () => {
  running = false;
  // let what is stored go out before counting
  for (let i = 0; i < 50 && (inFlight > 0 || pending.all(sentUpTo).length); i++) {
    publish();
    await new Promise((res) => setTimeout(res, 20));
  }
  const left = db.prepare('SELECT COUNT(*) FROM readings').pluck().get();
  process.stdout.write(`${JSON.stringify({ stored, deleted, left })}\n`);
  await broker.endAsync();
  client.close(() => undefined);
  db.close();
  process.exit(0);
});
