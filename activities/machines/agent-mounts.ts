import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../config/index.js';
import type { Mount } from '../compute/provider.js';

/** node inside a sandbox or container (the host's /usr, bound read-only), which runs the forwarder. */
export const SANDBOX_NODE = '/usr/bin/node';
/** The forwarder serving the agent's model endpoint (and a machine's egress proxy) inside its sandbox or container. */
export const FORWARDER = fileURLToPath(new URL('./sandbox-forwarder.cjs', import.meta.url));
export const FORWARDER_TARGET = '/opt/autovibe/forwarder.cjs';
/** Where the metering proxy's socket dir and the agent's home appear inside. */
export const SOCKET_DIR_TARGET = '/run/autovibe';
export const AGENT_HOME = '/home/agent';

/** The host directories of one agent machine: its private home and the dir of the proxy's socket. */
export function agentDirs(config: Config, machineId: string): { homeDir: string; runDir: string } {
  const machineDir = path.join(config.machinesDir, machineId);
  return { homeDir: path.join(machineDir, 'home'), runDir: path.join(machineDir, 'run') };
}

/**
 * What an agent machine sees beyond its workspace, the same on `local` and `container`: the CLIs
 * (at their host path: venv scripts name their interpreter by absolute path), the forwarder, the
 * proxy's socket dir and a writable home. Creates the host directories (a bind needs its source),
 * each private to the worker (0700): the machine's own socket dir is bound into its sandbox only,
 * read-only (connecting to a socket needs no write access to its directory), so no other machine
 * can reach its proxy and the machine cannot replace its socket.
 */
export function agentMounts(config: Config, machineId: string): Mount[] {
  const { homeDir, runDir } = agentDirs(config, machineId);
  fs.mkdirSync(config.machinesDir, { recursive: true, mode: 0o700 });
  for (const d of [path.dirname(runDir), homeDir, runDir]) {
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    fs.chmodSync(d, 0o700);
  }
  return [
    { source: config.toolsDir, target: config.toolsDir },
    { source: FORWARDER, target: FORWARDER_TARGET },
    { source: runDir, target: SOCKET_DIR_TARGET },
    { source: homeDir, target: AGENT_HOME, writable: true },
  ];
}

/**
 * What a shell machine with network sees beyond its workspace: the forwarder and its own egress
 * proxy's socket dir (read-only, private to the worker like an agent's), so it reaches that one proxy.
 */
export function networkMounts(config: Config, machineId: string): Mount[] {
  const { runDir } = agentDirs(config, machineId);
  fs.mkdirSync(config.machinesDir, { recursive: true, mode: 0o700 });
  for (const d of [path.dirname(runDir), runDir]) {
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    fs.chmodSync(d, 0o700);
  }
  return [
    { source: FORWARDER, target: FORWARDER_TARGET },
    { source: runDir, target: SOCKET_DIR_TARGET },
  ];
}

/** The same for a shell machine's container, with node to run the forwarder when the image lacks it. */
export function containerNetworkMounts(config: Config, machineId: string): Mount[] {
  return [...networkMounts(config, machineId), ...(config.containerAgentRuntime === 'host' ? hostRuntimeMounts() : [])];
}

/**
 * node and the C libraries the agent CLIs link, for a container whose image lacks them: the worker
 * host's /usr read-only, and its /lib and /lib64 (symlinks into /usr on merged-/usr hosts) at their
 * usual places. A production deployment uses an image carrying node and the libraries instead
 * (AUTOVIBE_CONTAINER_AGENT_RUNTIME=image), so no host system directory enters the container.
 */
export function hostRuntimeMounts(): Mount[] {
  const mounts: Mount[] = [{ source: '/usr', target: '/usr' }];
  for (const dir of ['/lib', '/lib64']) {
    if (fs.existsSync(dir)) mounts.push({ source: fs.realpathSync(dir), target: dir });
  }
  return mounts;
}

/** Every mount an agent machine's container needs. */
export function containerAgentMounts(config: Config, machineId: string): Mount[] {
  return [...agentMounts(config, machineId), ...(config.containerAgentRuntime === 'host' ? hostRuntimeMounts() : [])];
}
