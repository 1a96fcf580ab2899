import net from 'node:net';

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it).
 * There is an unavoidable race between closing the probe socket and the caller
 * binding the port; callers that pick ports this way should retry on "address in use".
 */
export async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: could not read the port of a listening socket'));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** Throws a clear error if nothing can listen on 127.0.0.1:port right now. */
export async function assertPortFree(port: number, what = 'port'): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `${what} 127.0.0.1:${port} is already in use (address already in use)`
            : `${what} 127.0.0.1:${port} cannot be bound: ${err.message}`,
          { cause: err },
        ),
      );
    });
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      server.close((err) => (err ? reject(err) : resolve()));
    });
  });
}
