/**
 * moto's AWS API server (EC2, ECS, SSM, …) on loopback, for the AWS provider tests and
 * benchmarks: the real AWS SDK talks to it as it would to AWS. The binary comes from
 * MOTO_SERVER, else scripts/install-moto (a venv under .autovibe/).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';
import { describeExit, sleep, spawnServiceProcess } from './process.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const INSTALL_SCRIPT = path.join(REPO_ROOT, 'scripts', 'install-moto');
const READY_TIMEOUT_MS = 30_000;
const PORT_ATTEMPTS = 3;

export interface MotoServer {
  /** http://127.0.0.1:PORT — the endpoint every AWS client of a test uses. */
  endpoint: string;
  /** Credentials moto accepts (any); fixed so no real credentials are ever read. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Forgets every resource (POST /moto-api/reset). */
  reset(): Promise<void>;
  /**
   * How a model's state moves (moto's state manager), e.g. `ecs::task`: by default a task's
   * status advances one step per DescribeTasks towards STOPPED, which a long poll would take for
   * a stop. `{ progression: 'manual', times: N }` makes it advance only after N reads.
   */
  setTransition(model: string, transition: { progression: 'manual' | 'immediate' | 'time'; times?: number; seconds?: number }): Promise<void>;
  stop(): Promise<void>;
}

export async function ensureMotoServer(): Promise<string> {
  if (process.env.MOTO_SERVER) return process.env.MOTO_SERVER;
  return new Promise<string>((resolve, reject) => {
    execFile(INSTALL_SCRIPT, [], { cwd: REPO_ROOT, encoding: 'utf8' }, (err, stdout, stderr) => {
      const binary = stdout.trim().split('\n').pop()?.trim() ?? '';
      if (err || !binary.startsWith('/')) {
        reject(new Error(`scripts/install-moto failed: ${String(stderr).trim() || String(err)}`, { cause: err }));
        return;
      }
      resolve(binary);
    });
  });
}

export async function startMoto(): Promise<MotoServer> {
  const binary = await ensureMotoServer();
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const proc = spawnServiceProcess({
      name: 'moto server',
      command: binary,
      args: ['-H', '127.0.0.1', '-p', String(port)],
      stopSignal: 'SIGINT',
      killAfterMs: 5_000,
    });
    const endpoint = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let ready = false;
    while (!ready) {
      if (proc.hasExited()) break;
      try {
        const res = await fetch(`${endpoint}/moto-api/data.json`);
        ready = res.ok;
      } catch {
        // not listening yet
      }
      if (!ready) {
        if (Date.now() > deadline) {
          await proc.stop();
          throw new Error(`moto server on ${endpoint} not ready after ${READY_TIMEOUT_MS / 1000}s:\n${proc.recentOutput()}`);
        }
        await Promise.race([sleep(100), proc.exited]);
      }
    }
    if (!ready) {
      const info = await proc.exited;
      const output = proc.recentOutput();
      if (/address already in use/i.test(output) && attempt < PORT_ATTEMPTS) continue;
      throw new Error(`moto server ${describeExit(info)} before answering:\n${output}`);
    }
    return {
      endpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      reset: async () => {
        const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
        if (!res.ok) throw new Error(`moto reset: HTTP ${res.status}`);
      },
      setTransition: async (model, transition) => {
        const res = await fetch(`${endpoint}/moto-api/state-manager/set-transition`, {
          method: 'POST',
          body: JSON.stringify({ model_name: model, transition }),
        });
        if (!res.ok) throw new Error(`moto set-transition ${model}: HTTP ${res.status} ${await res.text()}`);
      },
      stop: () => proc.stop(),
    };
  }
}
