import { workspacePathProblem } from '../../domain/artifacts.js';
import { appendAudit } from '../../store/audit.js';
import { getCheckpoint } from '../../store/checkpoints.js';
import type { Db } from '../../store/db.js';
import { readFileAt } from '../../store/git.js';
import { getProject } from '../../store/projects.js';
import type { LocalResponse } from './metering-proxy.js';

const PREFIX = '/autovibe/v1/checkpoints/';

/**
 * Files of other checkpoints for a running agent: `GET /autovibe/v1/checkpoints/:id/files/<path>`
 * on the sandbox's one way out (the metering proxy's socket, reached through the forwarder at
 * 127.0.0.1:8080). Only checkpoints of the machine's own project are served; every request,
 * served or refused, is an audit record of the machine. Returns null for any other path.
 */
export function checkpointFileRoute(db: Db, machine: { machineId: string; projectId: string }) {
  return async (method: string, url: string): Promise<LocalResponse | null> => {
    const pathname = url.split('?')[0]!;
    if (!pathname.startsWith(PREFIX)) return null;
    const reply = async (status: number, body: Buffer | string, details: Record<string, unknown>): Promise<LocalResponse> => {
      await appendAudit(db, {
        actor: `machine:${machine.machineId}`,
        action: 'machine.file_requested',
        subjectType: 'machine',
        subjectId: machine.machineId,
        projectId: machine.projectId,
        details: { ...details, status },
      });
      const text = typeof body === 'string';
      return {
        status,
        headers: { 'content-type': text ? 'application/json' : 'application/octet-stream' },
        body: text ? JSON.stringify({ error: { message: body } }) : body,
      };
    };
    const m = /^([^/]+)\/files\/(.+)$/.exec(pathname.slice(PREFIX.length));
    if (method !== 'GET' || !m) return reply(400, `use GET ${PREFIX}<checkpoint id>/files/<path>`, { url: pathname });
    let checkpointId: string;
    let filePath: string;
    try {
      checkpointId = decodeURIComponent(m[1]!);
      filePath = m[2]!.split('/').map(decodeURIComponent).join('/');
    } catch {
      return reply(400, 'the path is not valid percent-encoding', { url: pathname });
    }
    const problem = workspacePathProblem(filePath);
    if (problem) return reply(400, `path ${problem}`, { checkpointId, path: filePath });
    const checkpoint = await getCheckpoint(db, checkpointId);
    // Another project's checkpoint reads as absent: a machine learns nothing outside its project.
    if (!checkpoint || checkpoint.projectId !== machine.projectId) {
      return reply(404, `no checkpoint ${checkpointId} in this machine's project`, { checkpointId, path: filePath });
    }
    const project = await getProject(db, machine.projectId);
    const bytes = project ? await readFileAt(project.repoPath, checkpoint.commit, filePath) : null;
    if (!bytes) return reply(404, `checkpoint ${checkpointId} has no file ${filePath}`, { checkpointId, path: filePath });
    return reply(200, bytes, { checkpointId, path: filePath, size: bytes.length });
  };
}
