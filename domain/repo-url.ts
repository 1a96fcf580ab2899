/**
 * Which `repoUrl`s a project may be cloned from: remote URLs of the allowed schemes only. Local
 * paths, file://, git's `<transport>::<address>` helpers (`ext::` runs a command) and anything
 * that could name this host's own files (other projects' repositories) are refused. Credentials
 * never ride in the URL: one with a password (or, for http(s), any user part: that is a token)
 * is refused, so it can never be stored, echoed in a response, an audit record or a log.
 */
export const REPO_URL_SCHEMES = ['https', 'ssh', 'git', 'http'] as const;
export type RepoUrlScheme = (typeof REPO_URL_SCHEMES)[number];
export const DEFAULT_REPO_URL_SCHEMES: readonly RepoUrlScheme[] = ['https', 'ssh', 'git'];

export type RepoUrlCheck = { ok: true; scheme: RepoUrlScheme } | { ok: false; reason: string };

const CREDENTIALS_HINT =
  'credentials must not be part of repoUrl (they would be stored and shown); give the URL without them and a credentials reference instead';

// git's scp-like ssh syntax: [user@]host:path, with no slash before the first colon.
const SCP_LIKE = /^(?:([^@/:]+)@)?([A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]):(?!\/\/)(.+)$/;

export function checkRepoUrl(url: string, allowed: readonly RepoUrlScheme[]): RepoUrlCheck {
  const allowedText = allowed.join(', ');
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(url)) return { ok: false, reason: 'must not contain spaces or control characters' };
  if (url.startsWith('-')) return { ok: false, reason: 'must not start with "-"' };
  if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(url))
    return { ok: false, reason: `git transport helpers ("<transport>::") are not allowed; use a URL of: ${allowedText}` };

  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (!scheme) {
    if (/^[^@/]*:[^@/]*@/.test(url)) return { ok: false, reason: CREDENTIALS_HINT };
    const scp = SCP_LIKE.exec(url);
    if (!scp) return { ok: false, reason: `must be a remote URL (${allowedText}), not a local path` };
    if (!allowed.includes('ssh')) return { ok: false, reason: `scheme ssh is not allowed here; allowed: ${allowedText}` };
    return { ok: true, scheme: 'ssh' };
  }
  const normal = scheme === 'git+ssh' || scheme === 'ssh+git' ? 'ssh' : scheme;
  if (normal === 'file') return { ok: false, reason: `file:// URLs are not allowed (they read this host's files); use a remote URL of: ${allowedText}` };
  if (!(allowed as readonly string[]).includes(normal)) return { ok: false, reason: `scheme ${scheme} is not allowed; allowed: ${allowedText}` };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, reason: 'is not a valid URL' };
  }
  if (!parsed.hostname) return { ok: false, reason: 'must name a host' };
  if (parsed.password) return { ok: false, reason: CREDENTIALS_HINT };
  if (parsed.username && (normal === 'https' || normal === 'http')) return { ok: false, reason: CREDENTIALS_HINT };
  return { ok: true, scheme: normal as RepoUrlScheme };
}

/** Removes any user:password@ part from text that may quote a URL (git's error messages). */
export function redactUrlCredentials(text: string): string {
  return text.replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@\s]*@/g, '$1***@');
}
