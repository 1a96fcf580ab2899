import { Router } from 'express';
import { InputError, NotFoundError } from '../../domain/errors.js';
import { getCheckpoint, type Checkpoint } from '../../store/checkpoints.js';
import { diffCommits, listFiles, readFileAt } from '../../store/git.js';
import { param, type ApiContext } from '../context.js';
import { MESSAGES } from '../errors.js';
import { presentCheckpoint } from '../present.js';
import { loadProject } from './projects.js';

export function checkpointRoutes(ctx: ApiContext): Router {
  const r = Router();

  async function load(id: string): Promise<Checkpoint> {
    const c = await getCheckpoint(ctx.db, id);
    if (!c) throw new NotFoundError(MESSAGES.notFound('checkpoint', id));
    return c;
  }

  r.get('/checkpoints/:id', async (req, res) => {
    const checkpoint = await load(param(req, 'id'));
    const project = await loadProject(ctx, checkpoint.projectId);
    res.json({ ...presentCheckpoint(checkpoint), projectId: project.id, files: await listFiles(project.repoPath, checkpoint.commit) });
  });

  r.get('/checkpoints/:id/files/*path', async (req, res) => {
    const checkpoint = await load(param(req, 'id'));
    const project = await loadProject(ctx, checkpoint.projectId);
    const filePath = param(req, 'path');
    const bytes = await readFileAt(project.repoPath, checkpoint.commit, filePath);
    if (!bytes) throw new NotFoundError(`file ${filePath} not found in checkpoint ${checkpoint.id}`);
    res.type('application/octet-stream').send(bytes);
  });

  r.get('/checkpoints/:a/diff/:b', async (req, res) => {
    const [a, b] = await Promise.all([load(param(req, 'a')), load(param(req, 'b'))]);
    if (a.projectId !== b.projectId) throw new InputError(`checkpoints ${a.id} and ${b.id} belong to different projects`, { field: 'b' });
    const project = await loadProject(ctx, a.projectId);
    res.json({ from: a.id, to: b.id, ...(await diffCommits(project.repoPath, a.commit, b.commit)) });
  });

  return r;
}
