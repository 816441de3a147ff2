'use strict';
// node-redis (npm `redis`) through rampart:
//   node node-redis.js PORT [--package redis|redis-v5] [--resp 2|3] [--username U]
//                           [--password P] [--name N] [--database D] [--tag PREFIX]
// Connects with the library's defaults plus only the options given, through a recording tap,
// then checks the exact handshake the library sent (and rampart's reply to each command),
// and runs SET/GET/MGET/DEL/HSET/HGETALL over keys on every shard. Leaves PREFIX:kept:0..7.
// Exits 0 and prints "...: ok" on success; exits 1 with the failed checks on stderr.

const harness = require('./lib/harness');

async function main() {
  const { port, flags } = harness.parseArgs(process.argv.slice(2), [
    'package', 'resp', 'username', 'password', 'name', 'database', 'tag',
  ]);
  const pkg = flags.package || 'redis';
  const version = harness.installedVersion(pkg);
  const clientVersion = harness.installedVersion('@redis/client', pkg);
  const major = Number(version.split('.')[0]);
  const label = `node-redis ${version} (${JSON.stringify(flags)})`;
  const errors = [];
  harness.deadline(label, 10000, errors);
  const checks = new harness.Checks(label);
  const { createClient } = require(pkg);

  // What the library negotiates: v6 speaks RESP3 unless told RESP 2; v5 speaks RESP2 (no
  // HELLO) unless RESP is set, and then sends HELLO with that version, even 2.
  const resp = flags.resp === undefined ? undefined : Number(flags.resp);
  const protocol = resp ?? (major >= 6 ? 3 : 2);
  const sendsHello = major >= 6 ? protocol !== 2 : resp !== undefined;
  const expected = [];
  if (sendsHello) {
    let hello = `HELLO ${protocol}`;
    if (flags.password) hello += ` AUTH ${flags.username || 'default'} ${flags.password}`;
    if (flags.name) hello += ` SETNAME ${flags.name}`;
    expected.push(hello);
  } else {
    if (flags.password) expected.push(['AUTH', flags.username, flags.password].filter(Boolean).join(' '));
    if (flags.name) expected.push(`CLIENT SETNAME ${flags.name}`);
  }
  if (flags.database && flags.database !== '0') expected.push(`SELECT ${flags.database}`);
  expected.push(`CLIENT SETINFO LIB-VER ${clientVersion}`, 'CLIENT SETINFO LIB-NAME node-redis');
  // Maintenance notifications default to "auto" on RESP3: sent, and an error is ignored.
  if (protocol === 3) expected.push('CLIENT MAINT_NOTIFICATIONS ON moving-endpoint-type <auto>');

  const tap = await harness.startTap(port);
  const options = { socket: { host: '127.0.0.1', port: tap.port } };
  if (resp !== undefined) options.RESP = resp;
  if (flags.username) options.username = flags.username;
  if (flags.password) options.password = flags.password;
  if (flags.name) options.name = flags.name;
  if (flags.database) options.database = Number(flags.database);
  const client = createClient(options);
  client.on('error', (error) => errors.push(error));

  try {
    await client.connect();
    await harness.exercise(checks, {
      echo: (text) => client.sendCommand(['ECHO', text]),
      getName: () => client.clientGetName(),
      clientInfo: () => client.sendCommand(['CLIENT', 'INFO']),
      set: (key, value) => client.set(key, value),
      get: (key) => client.get(key),
      mget: (keys) => client.mGet(keys),
      hset: (key, fields) => client.hSet(key, fields),
      hgetall: async (key) => ({ ...(await client.hGetAll(key)) }),
      del: (keys) => client.del(keys),
    }, { tag: flags.tag || 'node-redis', name: flags.name, protocol });
    checks.equal(await client.quit(), 'OK', 'QUIT');
  } catch (error) {
    checks.ok(false, `the client failed: ${error && error.stack ? error.stack : error}`);
    client.destroy();
  }
  await tap.close();
  for (const error of errors) checks.ok(false, `'error' event: ${error && error.message}`);
  harness.checkTranscript(checks, tap, {
    handshake: expected,
    protocol,
    mayFail: ['CLIENT MAINT_NOTIFICATIONS'],
  });
  checks.report();
}

main().catch((error) => {
  process.stderr.write(`node-redis.js crashed: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
