'use strict';
// node-redis (npm `redis` 6) through rampart, the commands that hold a connection:
//   node node-redis-sessions.js PORT [--resp 2|3]
// A MULTI/EXEC transaction on hash-tagged keys, a WATCH'd transaction aborted by another
// client's write, a BLPOP answered by another client's RPUSH, and a pub/sub subscriber (on a
// duplicated client) receiving 1,000 messages over ten channels and a pattern, none lost or
// duplicated. Exits 0 and prints "node-redis sessions (...): ok"; exits 1 with the failed
// checks on stderr.

const { createClient } = require('redis');

function parse(argv) {
  const port = Number(argv[0]);
  const resp = argv[1] === '--resp' ? Number(argv[2]) : 3;
  if (!Number.isInteger(port) || port <= 0 || ![2, 3].includes(resp)) {
    process.stderr.write('usage: node-redis-sessions.js PORT [--resp 2|3]\n');
    process.exit(2);
  }
  return { port, resp };
}

async function main() {
  const { port, resp } = parse(process.argv.slice(2));
  const label = `node-redis sessions (RESP${resp})`;
  const failures = [];
  const check = (ok, what) => {
    if (!ok) failures.push(what);
  };
  const timer = setTimeout(() => {
    process.stderr.write(`${label}: timed out\n${failures.join('\n')}\n`);
    process.exit(1);
  }, 25000);
  const options = { socket: { host: '127.0.0.1', port }, RESP: resp };
  const client = createClient(options);
  client.on('error', (error) => failures.push(`client error: ${error}`));
  await client.connect();
  const tag = `{node${resp}}`;

  const results = await client.multi().set(`${tag}a`, '1').incr(`${tag}a`).get(`${tag}a`).exec();
  check(JSON.stringify(results) === JSON.stringify(['OK', 2, '2']), `MULTI/EXEC gave ${JSON.stringify(results)}`);

  const watcher = client.duplicate();
  await watcher.connect();
  await watcher.watch(`${tag}w`);
  await client.set(`${tag}w`, 'changed');
  let aborted = false;
  try {
    await watcher.multi().set(`${tag}w`, 'mine').exec();
  } catch (error) {
    aborted = /watch/i.test(String(error));
  }
  check(aborted, 'a WATCHed key changed by another client did not abort EXEC');
  check((await client.get(`${tag}w`)) === 'changed', 'the aborted transaction wrote its value');
  await watcher.quit();

  const blocked = client.duplicate();
  await blocked.connect();
  const popped = blocked.blPop(`${tag}queue`, 5);
  await new Promise((resolve) => setTimeout(resolve, 100));
  await client.rPush(`${tag}queue`, 'job');
  const job = await popped;
  check(job && job.element === 'job', `BLPOP gave ${JSON.stringify(job)}`);
  await blocked.quit();

  const subscriber = client.duplicate();
  await subscriber.connect();
  const channels = Array.from({ length: 10 }, (_, index) => `node${resp}:chan:${index}`);
  const got = [];
  await subscriber.subscribe(channels, (message, channel) => got.push(`${channel}=${message}`));
  const patterned = [];
  await subscriber.pSubscribe(`node${resp}:chan:*`, (message) => patterned.push(message));
  const sent = [];
  for (let index = 0; index < 1000; index += 1) {
    const channel = channels[index % channels.length];
    sent.push(`${channel}=m${index}`);
    const receivers = await client.publish(channel, `m${index}`);
    if (receivers !== 2) {
      failures.push(`PUBLISH ${channel} reached ${receivers} subscriptions, expected 2`);
      break;
    }
  }
  const until = Date.now() + 10000;
  while ((got.length < sent.length || patterned.length < sent.length) && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  check(got.length === sent.length, `${got.length} messages of ${sent.length}`);
  check(patterned.length === sent.length, `${patterned.length} pattern messages of ${sent.length}`);
  check(new Set(got).size === got.length, 'duplicate messages');
  check([...got].sort().join() === [...sent].sort().join(), 'messages differ from those sent');
  await subscriber.unsubscribe();
  await subscriber.pUnsubscribe();
  const pong = await subscriber.ping();
  check(String(pong) === 'PONG', `PING after unsubscribing gave ${JSON.stringify(pong)}`);
  await subscriber.quit();
  await client.quit();
  clearTimeout(timer);
  if (failures.length) {
    process.stderr.write(`${label}:\n${failures.join('\n')}\n`);
    process.exit(1);
  }
  process.stdout.write(`${label}: ok\n`);
}

main().catch((error) => {
  process.stderr.write(`node-redis sessions: ${error.stack || error}\n`);
  process.exit(1);
});
