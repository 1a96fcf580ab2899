import type { Command } from 'commander';
import { ok } from '../client.js';
import { UsageError } from '../errors.js';
import { printRecord } from '../output.js';
import { ctxOf, show } from '../runtime.js';

const CHECKPOINT_FIELDS = ['id', 'kind', 'status', 'parentId', 'mergeParentId', 'machineId', 'commit', 'createdAt'];

/** checkpoints merge|resolve|accept|reject: merging in the evolution tree (README "Merging checkpoints"). */
export function registerCheckpointMerges(checkpoints: Command): void {
  checkpoints
    .command('merge <id>')
    .description('merge checkpoint --from into <id>; on conflicts exits 5 with each path and its hunks (JSON on stderr)')
    .requiredOption('--from <checkpoint>', 'the checkpoint to merge in')
    .option('--message <text>', 'the merge commit message')
    .action(async (id: string, o: { from: string; message?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const r = await ok(
        api.POST('/checkpoints/{id}/merge', { params: { path: { id } }, body: { from: o.from, ...(o.message ? { message: o.message } : {}) } }),
      );
      show(cmd, r, (v) => printRecord(v, CHECKPOINT_FIELDS));
    });

  checkpoints
    .command('resolve <id>')
    .description('ask a machine to resolve the conflicts of merging --from into <id>; its result becomes a proposed merge checkpoint')
    .requiredOption('--from <checkpoint>', 'the checkpoint to merge in')
    .option('--type <type>', 'machine type', 'shell')
    .option('--command <cmd>', "a shell machine's command (required for shell)")
    .option('--prompt <text>', "an agent's instructions (default: resolve the listed conflicts, remove every marker)")
    .option('--money <amount>', 'money limit of the machine, e.g. 0.50')
    .option('--minutes <n>', 'time limit of the machine')
    .option('--message <text>', 'the merge commit message')
    .action(
      async (
        id: string,
        o: { from: string; type: string; command?: string; prompt?: string; money?: string; minutes?: string; message?: string },
        cmd: Command,
      ) => {
        const { api } = ctxOf(cmd);
        if (o.type === 'shell' && !o.command) throw new UsageError('--command is required for a shell machine');
        const minutes = o.minutes === undefined ? undefined : Number(o.minutes);
        if (minutes !== undefined && !(Number.isInteger(minutes) && minutes > 0)) throw new UsageError('--minutes: give a whole number of minutes');
        const r = await ok(
          api.POST('/checkpoints/{id}/merge-resolutions', {
            params: { path: { id } },
            body: {
              from: o.from,
              type: o.type as 'shell',
              ...(o.command ? { command: o.command } : {}),
              ...(o.prompt ? { prompt: o.prompt } : {}),
              ...(o.message ? { message: o.message } : {}),
              limits: { ...(o.money ? { money: o.money } : {}), ...(minutes ? { minutes } : {}) },
            },
          }),
        );
        show(cmd, r, (v) =>
          process.stdout.write(
            `machine ${v.machineId} resolves ${v.conflicts.map((c) => c.path).join(', ')}; its result will be ${v.proposedCheckpointId} (then: autovibe checkpoints accept|reject ${v.proposedCheckpointId})\n`,
          ),
        );
      },
    );

  checkpoints
    .command('accept <id>')
    .description('accept a proposed merge checkpoint: it becomes an ordinary merge (refused while conflict markers remain)')
    .action(async (id: string, _o, cmd: Command) => {
      const r = await ok(ctxOf(cmd).api.POST('/checkpoints/{id}/accept', { params: { path: { id } } }));
      show(cmd, r, (v) => printRecord(v, CHECKPOINT_FIELDS));
    });

  checkpoints
    .command('reject <id>')
    .description('reject a proposed merge checkpoint (it is kept, marked rejected)')
    .action(async (id: string, _o, cmd: Command) => {
      const r = await ok(ctxOf(cmd).api.POST('/checkpoints/{id}/reject', { params: { path: { id } } }));
      show(cmd, r, (v) => printRecord(v, CHECKPOINT_FIELDS));
    });
}
