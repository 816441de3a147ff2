'use strict';
// A client connecting while one shard of the pool is down:
//   node shard-down.js PORT --package redis|redis-v5|ioredis|ioredis-v5 --key KEY
// KEY must live on a shard that is up. Connects with the library's defaults, waits until the
// client is ready, then SET/GET/DEL KEY. Exits 0 and prints "...: ok" on success; exits 1 with
// what failed (and the errors the client reported) on stderr.

const harness = require('./lib/harness');

async function main() {
  const { port, flags } = harness.parseArgs(process.argv.slice(2), ['package', 'key']);
  const pkg = flags.package || 'redis';
  const key = flags.key || 'shard-down';
  const version = harness.installedVersion(pkg);
  const label = `${pkg} ${version} with a shard down`;
  const errors = [];
  harness.deadline(label, 5000, errors);
  const checks = new harness.Checks(label);
  const library = require(pkg);

  let client;
  if (pkg.startsWith('ioredis')) {
    client = new library({ host: '127.0.0.1', port });
    client.on('error', (error) => errors.push(error));
    await new Promise((resolve) => client.once('ready', resolve));
  } else {
    client = library.createClient({ socket: { host: '127.0.0.1', port } });
    client.on('error', (error) => errors.push(error));
    await client.connect();
  }
  checks.equal(await client.set(key, 'up'), 'OK', `SET ${key}`);
  checks.equal(await client.get(key), 'up', `GET ${key}`);
  checks.equal(await client.del(key), 1, `DEL ${key}`);
  checks.equal(await client.quit(), 'OK', 'QUIT');
  for (const error of errors) checks.ok(false, `'error' event: ${error && error.message}`);
  checks.report();
}

main().catch((error) => {
  process.stderr.write(`shard-down.js crashed: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
