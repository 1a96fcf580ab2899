'use strict';
// Runs inside a machine's sandbox, which has no network: listens on 127.0.0.1:<port> for each
// <port> <socket> pair and forwards every connection to that unix socket (the metering proxy's,
// the egress proxy's), then runs the machine's command as its child and exits with its status.
// Plain CommonJS so the sandbox's node runs it as is.
//   node sandbox-forwarder.cjs <port> <socket> [<port> <socket> ...] -- <command> [args...]
const net = require('node:net');
const { spawn } = require('node:child_process');

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const pairs = sep > 0 ? argv.slice(0, sep) : [];
const [command, ...args] = sep > 0 ? argv.slice(sep + 1) : [];
if (!pairs.length || pairs.length % 2 !== 0 || !command || pairs.some((v, i) => i % 2 === 0 && !/^\d+$/.test(v))) {
  process.stderr.write('usage: sandbox-forwarder.cjs <port> <socket> [<port> <socket> ...] -- <command> [args...]\n');
  process.exit(2);
}

function listen(port, socketPath) {
  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), '127.0.0.1', resolve);
  });
}

const listening = [];
for (let i = 0; i < pairs.length; i += 2) listening.push(listen(pairs[i], pairs[i + 1]));
Promise.all(listening).then(
  () => {
    const child = spawn(command, args, { stdio: 'inherit' });
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
    child.on('error', (err) => {
      process.stderr.write(`cannot start ${command}: ${err.message}\n`);
      process.exit(127);
    });
    child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
  },
  (err) => {
    process.stderr.write(`sandbox forwarder cannot listen: ${err.message}\n`);
    process.exit(125);
  },
);
