/**
 * Kubernetes objects for machines, as plain data: a namespace per project and a Job per machine
 * (resources from the compute profile, project/machine labels, ttlSecondsAfterFinished so
 * finished Jobs clean themselves up). Pure, so the manifests are tested without a cluster.
 */
import { PROFILES, type ProfileId } from './machines.js';

export const LABEL_MANAGED = 'autovibe/managed';
export const LABEL_PROJECT = 'autovibe/project';
export const LABEL_MACHINE = 'autovibe/machine';
export const ANNOTATION_TAGS = 'autovibe/tags';
/** The container that runs the machine; exec targets it. */
export const MACHINE_CONTAINER = 'machine';
export const WORKSPACE_PATH = '/workspace';

const MAX_NAME = 63;

/** FNV-1a, 32 bits, as 8 hex digits: a short stable suffix for names that had to be cut. */
function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * A DNS-1123 label (lowercase alphanumerics and '-', at most 63, alphanumeric at both ends)
 * made from `text`; the same text always gives the same label, different texts (almost surely)
 * different ones.
 * @example dnsLabel('Project_42') === 'project-42-<hash>'
 */
export function dnsLabel(text: string, prefix = ''): string {
  const clean = `${prefix}${text}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (clean === `${prefix}${text}` && clean.length > 0 && clean.length <= MAX_NAME) return clean;
  // Changed or too long: add a hash of the original so two texts cannot collide.
  const suffix = shortHash(`${prefix}${text}`);
  const head = clean.slice(0, MAX_NAME - suffix.length - 1).replace(/-+$/, '');
  return head ? `${head}-${suffix}` : `x-${suffix}`;
}

/** A label value (at most 63 of [A-Za-z0-9._-], alphanumeric at both ends). */
export function labelValue(text: string): string {
  if (/^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/.test(text)) return text;
  return dnsLabel(text);
}

export function projectNamespace(projectId: string, prefix = 'autovibe-'): string {
  return dnsLabel(projectId, prefix);
}

/**
 * The Job of a machine's `attempt`-th instance: a machine re-provisioned after an interruption
 * gets a new Job (`<machine>-2`, …) while the failed one is cleaned up by its TTL.
 */
export function machineJobName(machineId: string, attempt = 1): string {
  return attempt <= 1 ? dnsLabel(machineId) : dnsLabel(`${machineId}-${attempt}`);
}

export interface KubeToleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

export interface MachineJobInput {
  machineId: string;
  projectId: string;
  profile: string;
  spot: boolean;
  /** Container image with a shell; the machine's commands are exec'ed into it. */
  image: string;
  tags?: Record<string, string>;
  namespacePrefix?: string;
  /** Seconds a finished Job (and its pod) is kept before Kubernetes deletes it. */
  ttlSecondsAfterFinished?: number;
  /** Hard limit on the Job's life, in seconds. */
  activeDeadlineSeconds?: number;
  /** Node selector / tolerations that put spot machines on spot nodes. */
  spotNodeSelector?: Record<string, string>;
  spotTolerations?: KubeToleration[];
  serviceAccountName?: string;
  /** 1 for the machine's first Job, 2… after interruptions (see machineJobName). */
  attempt?: number;
}

export interface KubeObjectMeta {
  name: string;
  namespace?: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface MachineJobManifest {
  apiVersion: 'batch/v1';
  kind: 'Job';
  metadata: KubeObjectMeta & { namespace: string };
  spec: {
    backoffLimit: number;
    ttlSecondsAfterFinished: number;
    activeDeadlineSeconds?: number;
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        restartPolicy: 'Never';
        automountServiceAccountToken: boolean;
        serviceAccountName?: string;
        terminationGracePeriodSeconds: number;
        nodeSelector?: Record<string, string>;
        tolerations?: KubeToleration[];
        securityContext: { runAsNonRoot: boolean; runAsUser: number; runAsGroup: number; fsGroup: number };
        containers: Array<{
          name: string;
          image: string;
          command: string[];
          workingDir: string;
          env: Array<{ name: string; value: string }>;
          resources: { requests: Record<string, string>; limits: Record<string, string> };
          securityContext: { allowPrivilegeEscalation: boolean; capabilities: { drop: string[] } };
          volumeMounts: Array<{ name: string; mountPath: string }>;
        }>;
        volumes: Array<{ name: string; emptyDir: Record<string, never> }>;
      };
    };
  };
}

export function machineLabels(machineId: string, projectId: string): Record<string, string> {
  return { [LABEL_MANAGED]: 'true', [LABEL_PROJECT]: labelValue(projectId), [LABEL_MACHINE]: labelValue(machineId) };
}

/** The namespace a project's machines run in. */
export function buildProjectNamespace(projectId: string, prefix?: string): { apiVersion: 'v1'; kind: 'Namespace'; metadata: KubeObjectMeta } {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: projectNamespace(projectId, prefix), labels: { [LABEL_MANAGED]: 'true', [LABEL_PROJECT]: labelValue(projectId) } },
  };
}

/**
 * The Job of one machine: a single pod that never restarts (a failed machine is re-provisioned by
 * its workflow, not by Kubernetes), sized by the profile, idling until commands are exec'ed in.
 */
export function buildMachineJob(input: MachineJobInput): MachineJobManifest {
  if (!Object.hasOwn(PROFILES, input.profile)) throw new RangeError(`unknown compute profile "${input.profile}"`);
  const profile = PROFILES[input.profile as ProfileId];
  const labels = machineLabels(input.machineId, input.projectId);
  const resources = { cpu: String(profile.cpus), memory: `${profile.memoryMiB}Mi` };
  const useSpotPlacement = input.spot && (input.spotNodeSelector !== undefined || input.spotTolerations !== undefined);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: machineJobName(input.machineId, input.attempt),
      namespace: projectNamespace(input.projectId, input.namespacePrefix),
      labels,
      // Tags keep their exact keys and values here; labels allow neither ':' in keys nor long values.
      annotations: { [ANNOTATION_TAGS]: JSON.stringify(input.tags ?? {}) },
    },
    spec: {
      backoffLimit: 0,
      ttlSecondsAfterFinished: input.ttlSecondsAfterFinished ?? 300,
      ...(input.activeDeadlineSeconds !== undefined ? { activeDeadlineSeconds: input.activeDeadlineSeconds } : {}),
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          ...(input.serviceAccountName ? { serviceAccountName: input.serviceAccountName, automountServiceAccountToken: true } : {}),
          terminationGracePeriodSeconds: 10,
          ...(useSpotPlacement && input.spotNodeSelector ? { nodeSelector: input.spotNodeSelector } : {}),
          ...(useSpotPlacement && input.spotTolerations ? { tolerations: input.spotTolerations } : {}),
          securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 },
          containers: [
            {
              name: MACHINE_CONTAINER,
              image: input.image,
              // Idles until deleted; TERM ends it at once. Commands arrive through exec.
              command: ['/bin/sh', '-c', "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"],
              workingDir: WORKSPACE_PATH,
              env: [
                { name: 'AUTOVIBE_MACHINE_ID', value: input.machineId },
                { name: 'AUTOVIBE_PROJECT_ID', value: input.projectId },
              ],
              resources: { requests: resources, limits: resources },
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
              volumeMounts: [{ name: 'workspace', mountPath: WORKSPACE_PATH }],
            },
          ],
          volumes: [{ name: 'workspace', emptyDir: {} }],
        },
      },
    },
  };
}

export interface NoEgressPolicyManifest {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  metadata: KubeObjectMeta & { namespace: string };
  spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: ['Egress']; egress: [] };
}

/**
 * Denies every outgoing connection of one machine Job's pod: present while the machine runs a
 * command without network. Enforced by the cluster's network plugin (Calico, Cilium, the EKS VPC
 * CNI with network policies on, …); a plugin without NetworkPolicy support ignores it.
 */
export function buildNoEgressPolicy(input: { machineId: string; projectId: string; jobName: string; namespace: string }): NoEgressPolicyManifest {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: noEgressPolicyName(input.jobName), namespace: input.namespace, labels: machineLabels(input.machineId, input.projectId) },
    // job-name (set by the Job controller) keeps an earlier Job's pods of the machine out of it.
    spec: { podSelector: { matchLabels: { [LABEL_MACHINE]: labelValue(input.machineId), 'job-name': input.jobName } }, policyTypes: ['Egress'], egress: [] },
  };
}

export function noEgressPolicyName(jobName: string): string {
  return dnsLabel(`${jobName}-no-egress`);
}
