'use strict';
// Runs inside a machine's sandbox, which has no network: listens on 127.0.0.1:<port> and
// forwards every connection to the metering proxy's unix socket, then runs the agent command as
// its child and exits with the agent's status. Plain CommonJS so the sandbox's node runs it as is.
//   node sandbox-forwarder.cjs <port> <socket> -- <command> [args...]
const net = require('node:net');
const { spawn } = require('node:child_process');

const [port, socketPath, sep, command, ...args] = process.argv.slice(2);
if (!port || !socketPath || sep !== '--' || !command) {
  process.stderr.write('usage: sandbox-forwarder.cjs <port> <socket> -- <command> [args...]\n');
  process.exit(2);
}
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
});
server.listen(Number(port), '127.0.0.1', () => {
  const child = spawn(command, args, { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('error', (err) => {
    process.stderr.write(`cannot start ${command}: ${err.message}\n`);
    process.exit(127);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
});
