import { workspacePathProblem } from '../../domain/artifacts.js';
import { appendAudit } from '../../store/audit.js';
import { getCheckpoint, listCheckpoints } from '../../store/checkpoints.js';
import type { Db } from '../../store/db.js';
import { listFiles, readFileAt } from '../../store/git.js';
import { getProject, type Project } from '../../store/projects.js';
import type { LocalResponse } from './metering-proxy.js';
import type { Config } from '../../config/index.js';
import { withLocalRepo } from '../../store/shared-storage.js';

const LIST = '/autovibe/v1/checkpoints';
const PREFIX = `${LIST}/`;
const json = (status: number, body: unknown): LocalResponse => ({ status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/**
 * Files of other checkpoints for a running agent, on the sandbox's one way out (the metering
 * proxy's socket, reached through the forwarder at 127.0.0.1:8080):
 * `GET /autovibe/v1/checkpoints` (the project's checkpoints), `GET /autovibe/v1/checkpoints/:id`
 * (its files) and `GET /autovibe/v1/checkpoints/:id/files/<path>` (one file's bytes). Only
 * checkpoints of the machine's own project are served; every file request, served or refused, is
 * an audit record of the machine. Returns null for any other path.
 */
export function checkpointFileRoute(db: Db, machine: { machineId: string; projectId: string }, config?: Pick<Config, 'objectStore' | 'projectsDir'>) {
  const here = async (project: Project, commit: string) => (config ? withLocalRepo(db, config, project, [commit]) : project);
  return async (method: string, url: string): Promise<LocalResponse | null> => {
    const pathname = url.split('?')[0]!.replace(/\/+$/, '');
    if (pathname !== LIST && !pathname.startsWith(PREFIX)) return null;
    if (method === 'GET' && pathname === LIST) {
      const items = await listCheckpoints(db, machine.projectId);
      return json(200, { items: items.map((c) => ({ id: c.id, parentId: c.parentId, machineId: c.machineId, kind: c.kind, createdAt: c.createdAt })) });
    }
    if (method === 'GET' && /^[^/]+$/.test(pathname.slice(PREFIX.length))) {
      let id: string;
      try {
        id = decodeURIComponent(pathname.slice(PREFIX.length));
      } catch {
        return json(400, { error: { message: 'the path is not valid percent-encoding' } });
      }
      const checkpoint = await getCheckpoint(db, id);
      const found = await getProject(db, machine.projectId);
      const project = found && checkpoint ? await here(found, checkpoint.commit) : null;
      if (!checkpoint || checkpoint.projectId !== machine.projectId || !project)
        return json(404, { error: { message: `no checkpoint ${pathname.slice(PREFIX.length)} in this machine's project` } });
      return json(200, {
        id: checkpoint.id,
        machineId: checkpoint.machineId,
        kind: checkpoint.kind,
        files: await listFiles(project.repoPath, checkpoint.commit),
      });
    }
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
    if (method !== 'GET' || !m) return reply(400, `use GET ${LIST}, ${PREFIX}<checkpoint id> or ${PREFIX}<checkpoint id>/files/<path>`, { url: pathname });
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
    const found = await getProject(db, machine.projectId);
    const project = found ? await here(found, checkpoint.commit) : null;
    const bytes = project ? await readFileAt(project.repoPath, checkpoint.commit, filePath) : null;
    if (!bytes) return reply(404, `checkpoint ${checkpointId} has no file ${filePath}`, { checkpointId, path: filePath });
    return reply(200, bytes, { checkpointId, path: filePath, size: bytes.length });
  };
}
