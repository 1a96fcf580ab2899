import type { MachineTypeId } from '../machine-types.js';

/** What an adapter knows about the sandbox it will run in. Paths are as seen inside the sandbox. */
export interface AgentContext {
  prompt: string;
  model: string;
  /** Base URL of the model API inside the sandbox (the forwarder to the metering proxy). */
  baseUrl: string;
  /** Where the agent CLIs are mounted, read-only. */
  toolsDir: string;
  home: string;
}

export interface AgentInvocation {
  argv: string[];
  env: Record<string, string>;
  /** Files to create under $HOME before the agent starts (path relative to $HOME → content). */
  homeFiles: Record<string, string>;
}

export interface AgentTurn {
  text: string;
  toolCalls: Array<{ name: string; input: unknown }>;
}

/** What the tool itself said about its run; AutoVibe's own metering stays the source of truth. */
export interface AgentReport {
  turns: AgentTurn[];
  reportedUsage: { inputTokens: number; outputTokens: number } | null;
  reportedCostUsd: number | null;
  result: string | null;
  success: boolean;
}

/** Where a type's model API is and how to authenticate, from the platform's own environment. */
export type Upstream = { ok: true; url: string; headers: Record<string, string> } | { ok: false; reason: string };

export interface AgentAdapter {
  type: Exclude<MachineTypeId, 'shell'>;
  /** The CLI, relative to the tools directory. */
  binary: string;
  /** The command that installs the CLI into the tools directory. */
  install: string;
  upstream(env: NodeJS.ProcessEnv): Upstream;
  invocation(ctx: AgentContext): AgentInvocation;
  parseOutput(stdout: string): AgentReport;
}

/** Parses every JSON object found in a text, one per line or one whole document. */
export function jsonObjects(text: string): Array<Record<string, any>> {
  const trimmed = text.trim();
  if (!trimmed) return [];
  try {
    const whole = JSON.parse(trimmed);
    return Array.isArray(whole) ? whole : [whole];
  } catch {
    // not one document: JSON lines
  }
  const out: Array<Record<string, any>> = [];
  for (const line of trimmed.split('\n')) {
    const l = line.trim();
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l));
    } catch {
      // a log line that merely starts with a brace
    }
  }
  return out;
}

/** Strips a trailing `/v1` so paths forwarded from the sandbox (`/v1/...`) land right. */
export function apiRoot(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/v1$/, '');
}

/** One `assistant` line of Claude-style stream output (Claude Code, Qwen Code) as a turn, or null. */
export function assistantTurn(o: Record<string, any>): AgentTurn | null {
  if (o.type !== 'assistant' || !Array.isArray(o.message?.content)) return null;
  const content = o.message.content as Array<Record<string, any>>;
  return {
    text: content
      .filter((c) => c.type === 'text')
      .map((c) => c.text)
      .join(''),
    toolCalls: content.filter((c) => c.type === 'tool_use').map((c) => ({ name: c.name, input: c.input })),
  };
}
