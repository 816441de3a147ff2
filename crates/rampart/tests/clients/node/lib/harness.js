'use strict';
// Shared by node-redis.js and ioredis.js: argument parsing, a recording TCP tap between the
// client and rampart, a RESP2/RESP3 decoder for what the tap saw, and the checks every
// scenario runs. A script prints its transcript on stdout and exits 1 with the failed checks
// on stderr.

const net = require('node:net');
const path = require('node:path');

/** Parses `PORT [--flag value]...` into `{ port, flags }`. */
function parseArgs(argv, known) {
  const [portText, ...rest] = argv;
  const port = Number(portText);
  if (!Number.isInteger(port) || port <= 0) {
    usage(`the first argument must be rampart's port, got ${JSON.stringify(portText)}`);
  }
  const flags = {};
  for (let index = 0; index < rest.length; index += 2) {
    const name = rest[index];
    if (!name.startsWith('--') || !known.includes(name.slice(2)) || index + 1 >= rest.length) {
      usage(`unexpected argument ${JSON.stringify(name)} (known: ${known.map((k) => `--${k} VALUE`).join(' ')})`);
    }
    flags[name.slice(2)] = rest[index + 1];
  }
  return { port, flags };
}

function usage(message) {
  process.stderr.write(`usage error: ${message}\n`);
  process.exit(2);
}

/** The version of `pkg` as installed next to this script (e.g. `redis-v5` or `@redis/client`). */
function installedVersion(pkg, from) {
  const paths = from ? [path.dirname(require.resolve(`${from}/package.json`))] : undefined;
  return require(require.resolve(`${pkg}/package.json`, paths ? { paths } : undefined)).version;
}

/**
 * A transparent TCP relay on a free loopback port that forwards to rampart and records both
 * directions, so the script can check exactly what the library sent and what it got back.
 */
async function startTap(targetPort) {
  const connections = [];
  const server = net.createServer((client) => {
    const record = { sent: [], received: [], closed: null };
    record.closed = new Promise((resolve) => {
      let open = 2;
      const done = () => {
        open -= 1;
        if (open === 0) resolve();
      };
      const upstream = net.connect(targetPort, '127.0.0.1');
      client.on('data', (chunk) => {
        record.sent.push(chunk);
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => {
        record.received.push(chunk);
        client.write(chunk);
      });
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', done);
      upstream.on('close', done);
    });
    connections.push(record);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: server.address().port,
    connections,
    async close() {
      await Promise.race([
        Promise.all(connections.map((record) => record.closed)),
        new Promise((resolve) => setTimeout(resolve, 2000)),
      ]);
      server.close();
    },
  };
}

/** Decodes every RESP2/RESP3 value in `buffer`: `{ type, value }` objects, `type` the prefix byte. */
function decodeAll(buffer) {
  const values = [];
  let offset = 0;
  const line = () => {
    const end = buffer.indexOf('\r\n', offset, 'latin1');
    if (end < 0) throw new Error(`truncated RESP at byte ${offset}`);
    const text = buffer.toString('utf8', offset, end);
    offset = end + 2;
    return text;
  };
  const blob = (length) => {
    const value = buffer.subarray(offset, offset + length);
    offset += length + 2;
    return value.toString('utf8');
  };
  const one = () => {
    const type = String.fromCharCode(buffer[offset]);
    offset += 1;
    const header = line();
    switch (type) {
      case '+':
      case '-':
      case ':':
      case ',':
      case '(':
      case '#':
      case '_':
        return { type, value: header };
      case '$':
      case '=':
      case '!':
        return Number(header) < 0 ? { type, value: null } : { type, value: blob(Number(header)) };
      case '*':
      case '~':
      case '>': {
        if (Number(header) < 0) return { type, value: null };
        const items = [];
        for (let index = 0; index < Number(header); index += 1) items.push(one());
        return { type, value: items };
      }
      case '%':
      case '|': {
        const pairs = [];
        for (let index = 0; index < Number(header); index += 1) pairs.push([one(), one()]);
        if (type === '|') return one(); // attributes precede the real reply
        return { type, value: pairs };
      }
      default:
        throw new Error(`unknown RESP type ${JSON.stringify(type)} at byte ${offset - 1}`);
    }
  };
  while (offset < buffer.length) values.push(one());
  return values;
}

/** A command as the client sent it: an array of strings. */
function commandWords(value) {
  if (value.type !== '*' || !Array.isArray(value.value)) {
    throw new Error(`the client sent a non-array command: ${JSON.stringify(value)}`);
  }
  return value.value.map((word) => String(word.value));
}

/** Command name, CLIENT subcommand and HELLO keywords upper-cased; everything else as sent. */
function canonical(words) {
  const out = [...words];
  out[0] = out[0].toUpperCase();
  if (out[0] === 'CLIENT' && out.length > 1) out[1] = out[1].toUpperCase();
  if (out[0] === 'HELLO') {
    for (let index = 2; index < out.length; index += 1) {
      if (/^(auth|setname)$/i.test(out[index])) out[index] = out[index].toUpperCase();
    }
  }
  return out.join(' ');
}

/** A short, readable rendering of a reply. */
function render(reply) {
  if (reply === undefined) return '(no reply)';
  switch (reply.type) {
    case '*':
    case '~':
    case '>':
      return reply.value === null
        ? `${reply.type}-1`
        : `${reply.type}[${reply.value.map(render).join(', ')}]`;
    case '%':
      return `%{${reply.value.map(([key, value]) => `${render(key)}: ${render(value)}`).join(', ')}}`;
    case '$':
      return reply.value === null ? '$-1' : JSON.stringify(reply.value);
    case '=':
      return `=${JSON.stringify(reply.value.length > 60 ? `${reply.value.slice(0, 60)}...` : reply.value)}`;
    default:
      return `${reply.type}${reply.value}`;
  }
}

/** A reply and every value nested in it. */
function flatten(reply) {
  const out = [reply];
  if (['*', '~', '>'].includes(reply.type) && reply.value) {
    for (const item of reply.value) out.push(...flatten(item));
  }
  if (reply.type === '%') {
    for (const [key, value] of reply.value) out.push(...flatten(key), ...flatten(value));
  }
  return out;
}

/** Field `name` of a HELLO reply, RESP3 map or RESP2 flat array. */
function helloField(reply, name) {
  if (reply.type === '%') {
    const pair = reply.value.find(([key]) => key.value === name);
    return pair && pair[1];
  }
  if (reply.type === '*' && reply.value) {
    for (let index = 0; index + 1 < reply.value.length; index += 2) {
      if (reply.value[index].value === name) return reply.value[index + 1];
    }
  }
  return undefined;
}

/** Collects failed checks; `report` prints them and exits non-zero if there are any. */
class Checks {
  constructor(label) {
    this.label = label;
    this.failures = [];
  }

  ok(condition, message) {
    if (!condition) this.failures.push(message);
    return condition;
  }

  equal(actual, expected, what) {
    const same = JSON.stringify(actual) === JSON.stringify(expected);
    return this.ok(same, `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }

  report() {
    if (this.failures.length) {
      process.stderr.write(`${this.label}: ${this.failures.length} check(s) failed:\n`);
      for (const failure of this.failures) process.stderr.write(`  - ${failure}\n`);
      process.exit(1);
    }
    process.stdout.write(`${this.label}: ok\n`);
  }
}

/**
 * Fails the script if it has not finished after `ms` (clients reconnect forever by default),
 * naming the `errors` the client reported meanwhile.
 */
function deadline(label, ms, errors) {
  return setTimeout(() => {
    process.stderr.write(`${label}: did not finish within ${ms} ms (handshake or command hung)\n`);
    const counts = new Map();
    for (const error of errors) {
      const message = String(error && error.message);
      counts.set(message, (counts.get(message) || 0) + 1);
    }
    for (const [message, count] of counts) {
      process.stderr.write(`  - 'error' event${count > 1 ? ` (${count} times)` : ''}: ${message}\n`);
    }
    process.exit(1);
  }, ms).unref();
}

const MARKER = 'rampart-handshake-done';

/**
 * The checks on what went over the wire: one connection; the handshake (everything before the
 * script's `ECHO MARKER`) is exactly `expected.handshake` (HELLO or AUTH first), every
 * handshake reply is a success except those `expected.mayFail` names, HELLO's reply has the
 * negotiated `proto`, and after the handshake no reply is an error and nulls and maps have the
 * wire type of the negotiated protocol.
 */
function checkTranscript(checks, tap, expected) {
  checks.equal(tap.connections.length, 1, 'connections the client opened');
  if (!tap.connections.length) return;
  const record = tap.connections[0];
  let sent;
  let received;
  try {
    sent = decodeAll(Buffer.concat(record.sent)).map(commandWords);
    received = decodeAll(Buffer.concat(record.received)).filter((reply) => reply.type !== '>');
  } catch (error) {
    checks.ok(false, `cannot decode the conversation: ${error.message}`);
    return;
  }
  process.stdout.write(`--- transcript (${sent.length} commands, ${received.length} replies) ---\n`);
  sent.forEach((words, index) => {
    process.stdout.write(`> ${canonical(words)}\n< ${render(received[index])}\n`);
  });
  checks.equal(received.length, sent.length, 'replies received for the commands sent');

  const markerAt = sent.findIndex((words) => words[0].toUpperCase() === 'ECHO' && words[1] === MARKER);
  if (!checks.ok(markerAt >= 0, `the script's ECHO ${MARKER} was not seen`)) return;
  // The endpoint type a client asks maintenance notifications for is its own guess from the
  // address; any value will do.
  const anyEndpoint = (command) => command.replace(/( moving-endpoint-type) \S+$/, '$1 <auto>');
  const handshake = sent.slice(0, markerAt).map(canonical).map(anyEndpoint);
  expected = { ...expected, handshake: expected.handshake.map(anyEndpoint) };
  checks.equal([...handshake].sort(), [...expected.handshake].sort(), 'handshake commands (any order)');
  // Authentication and protocol come first; the rest of a handshake may be pipelined in any
  // order (ioredis 5 sends LIB-VER once it has read its package.json).
  if (/^(HELLO|AUTH)\b/.test(expected.handshake[0] || '')) {
    checks.equal(handshake[0], expected.handshake[0], 'first handshake command');
  }
  const protocolTypes = expected.protocol === 3
    ? { nulls: ['_'], map: '%' }
    : { nulls: ['$', '*'], map: '*' };
  sent.forEach((words, index) => {
    const command = canonical(words);
    const reply = received[index];
    if (!reply) return;
    if (index < markerAt) {
      const tolerated = (expected.mayFail || []).some((prefix) => command.startsWith(prefix));
      if (!tolerated) {
        checks.ok(!['-', '!'].includes(reply.type), `handshake command '${command}' got the error ${render(reply)}`);
      }
      if (words[0].toUpperCase() === 'HELLO') {
        const proto = helloField(reply, 'proto');
        checks.ok(
          reply.type === (expected.protocol === 3 ? '%' : '*'),
          `'${command}' must answer with a ${expected.protocol === 3 ? 'RESP3 map' : 'RESP2 array'}, got ${render(reply)}`,
        );
        checks.ok(proto && Number(proto.value) === expected.protocol, `'${command}' reply has proto ${render(proto)}`);
      }
      return;
    }
    checks.ok(!['-', '!'].includes(reply.type), `'${command}' got the error ${render(reply)}`);
    for (const value of flatten(reply)) {
      if (value.value === null || value.type === '_') {
        checks.ok(
          protocolTypes.nulls.includes(value.type),
          `'${command}' answered a null as ${render(value)} on a RESP${expected.protocol} connection: ${render(reply)}`,
        );
      }
    }
    if (words[0].toUpperCase() === 'HGETALL') {
      checks.equal(reply.type, protocolTypes.map, `wire type of the '${command}' reply on RESP${expected.protocol}`);
    }
  });
}

/**
 * The commands every scenario runs once the client is ready, through an adapter over the
 * library's own API: marker, connection state, SET/GET/MGET/DEL over keys on every shard, a hash,
 * and `kept` keys left behind for the Rust side to find on the shards.
 */
async function exercise(checks, client, options) {
  const { tag, name, protocol } = options;
  checks.equal(await client.echo(MARKER), MARKER, 'ECHO');
  if (name) checks.equal(await client.getName(), name, 'CLIENT GETNAME after the handshake set it');
  const info = String(await client.clientInfo());
  checks.ok(info.includes(`resp=${protocol}`), `CLIENT INFO should say resp=${protocol}: ${info.trim()}`);
  if (name) checks.ok(info.includes(`name=${name} `), `CLIENT INFO should carry name=${name}: ${info.trim()}`);

  const keys = Array.from({ length: 16 }, (_, index) => `${tag}:k${index}`);
  const values = keys.map((key) => `value of ${key}`);
  for (let index = 0; index < keys.length; index += 1) {
    checks.equal(await client.set(keys[index], values[index]), 'OK', `SET ${keys[index]}`);
  }
  for (let index = 0; index < keys.length; index += 1) {
    checks.equal(await client.get(keys[index]), values[index], `GET ${keys[index]}`);
  }
  checks.equal(await client.mget(keys), values, `MGET of ${keys.length} keys`);
  checks.equal(
    await client.mget([keys[0], `${tag}:missing`, keys[15]]),
    [values[0], null, values[15]],
    'MGET with a missing key',
  );
  checks.equal(await client.hset(`${tag}:hash`, { f1: 'v1', f2: 'v2' }), 2, 'HSET');
  checks.equal(await client.hgetall(`${tag}:hash`), { f1: 'v1', f2: 'v2' }, 'HGETALL');
  checks.equal(await client.del([...keys, `${tag}:hash`]), keys.length + 1, 'DEL of every key');
  checks.equal(await client.get(keys[3]), null, 'GET after DEL');
  for (let index = 0; index < 8; index += 1) {
    checks.equal(await client.set(`${tag}:kept:${index}`, `kept ${index}`), 'OK', `SET ${tag}:kept:${index}`);
  }
}

module.exports = {
  parseArgs,
  installedVersion,
  startTap,
  checkTranscript,
  exercise,
  deadline,
  Checks,
};
