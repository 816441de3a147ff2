'use strict';
// ioredis through rampart:
//   node ioredis.js PORT [--package ioredis|ioredis-v5] [--protocol 2|3] [--username U]
//                        [--password P] [--name CONNECTION_NAME] [--db D] [--tag PREFIX]
// Connects with the library's defaults plus only the options given (`--name` is ioredis's
// `connectionName`), through a recording tap, then checks the exact handshake the library sent
// (including its INFO ready check) and rampart's reply to each command, and runs
// SET/GET/MGET/DEL/HSET/HGETALL over keys on every shard. Leaves PREFIX:kept:0..7.
// Exits 0 and prints "...: ok" on success; exits 1 with the failed checks on stderr.

const harness = require('./lib/harness');

async function main() {
  const { port, flags } = harness.parseArgs(process.argv.slice(2), [
    'package', 'protocol', 'username', 'password', 'name', 'db', 'tag',
  ]);
  const pkg = flags.package || 'ioredis';
  const version = harness.installedVersion(pkg);
  const major = Number(version.split('.')[0]);
  const label = `ioredis ${version} (${JSON.stringify(flags)})`;
  const errors = [];
  harness.deadline(label, 10000, errors);
  const checks = new harness.Checks(label);
  const Redis = require(pkg);

  // ioredis 6 opens with HELLO 3 (carrying AUTH) unless `protocol: 2`; ioredis 5 speaks RESP2
  // and sends AUTH. Both then SELECT, CLIENT SETNAME, CLIENT SETINFO x2 and the INFO ready check.
  const protocol = major >= 6 ? Number(flags.protocol || 3) : 2;
  const expected = [];
  if (protocol === 3) {
    expected.push(`HELLO 3${flags.password ? ` AUTH ${flags.username || 'default'} ${flags.password}` : ''}`);
  } else if (flags.password) {
    expected.push(['AUTH', flags.username, flags.password].filter(Boolean).join(' '));
  }
  if (flags.db && flags.db !== '0') expected.push(`SELECT ${flags.db}`);
  if (flags.name) expected.push(`CLIENT SETNAME ${flags.name}`);
  expected.push(`CLIENT SETINFO LIB-VER ${version}`, 'CLIENT SETINFO LIB-NAME ioredis', 'INFO');

  const tap = await harness.startTap(port);
  const options = { host: '127.0.0.1', port: tap.port };
  if (flags.protocol) options.protocol = Number(flags.protocol);
  if (flags.username) options.username = flags.username;
  if (flags.password) options.password = flags.password;
  if (flags.name) options.connectionName = flags.name;
  if (flags.db) options.db = Number(flags.db);
  const client = new Redis(options);
  client.on('error', (error) => errors.push(error));

  try {
    await new Promise((resolve, reject) => {
      client.once('ready', resolve);
      client.once('end', () => reject(new Error('the connection ended before it was ready')));
    });
    await harness.exercise(checks, {
      echo: (text) => client.echo(text),
      getName: () => client.client('GETNAME'),
      clientInfo: () => client.call('CLIENT', 'INFO'),
      set: (key, value) => client.set(key, value),
      get: (key) => client.get(key),
      mget: (keys) => client.mget(...keys),
      hset: (key, fields) => client.hset(key, fields),
      hgetall: (key) => client.hgetall(key),
      del: (keys) => client.del(...keys),
    }, { tag: flags.tag || 'ioredis', name: flags.name, protocol });
    checks.equal(await client.quit(), 'OK', 'QUIT');
  } catch (error) {
    checks.ok(false, `the client failed: ${error && error.stack ? error.stack : error}`);
    client.disconnect();
  }
  await tap.close();
  for (const error of errors) checks.ok(false, `'error' event: ${error && error.message}`);
  harness.checkTranscript(checks, tap, { handshake: expected, protocol });
  checks.report();
}

main().catch((error) => {
  process.stderr.write(`ioredis.js crashed: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
