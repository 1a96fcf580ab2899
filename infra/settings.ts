/**
 * The stack's settings: read from the Pulumi stack configuration (Pulumi.<stack>.yaml, plus the
 * secrets set with `pulumi config set --secret`) and checked before any resource is declared.
 */
import * as pulumi from '@pulumi/pulumi';

/** The VM profiles machines run on (domain/machines.ts PROFILES; standard and large are the bigger tiers). */
export const VM_PROFILES = ['lightweight', 'standard', 'large'] as const;
export type VmProfile = (typeof VM_PROFILES)[number];

export interface TemporalSettings {
  /** host:port of the Temporal frontend, e.g. my-ns.a1b2c.tmprl.cloud:7233. */
  address: string;
  namespace: string;
  /** Connect with TLS (implied by a client certificate or an API key). */
  tls: boolean;
  /** TLS server name override (SNI), when the address is not the certificate's name. */
  serverName: string | undefined;
  /** mTLS client certificate and key (PEM); both or neither. */
  clientCert: pulumi.Output<string> | undefined;
  clientKey: pulumi.Output<string> | undefined;
  /** CA bundle (PEM) that signed the server's certificate, for a self-hosted server with a private CA. */
  serverCa: pulumi.Output<string> | undefined;
  /** Temporal Cloud API key. */
  apiKey: pulumi.Output<string> | undefined;
}

export interface Settings {
  project: string;
  environment: string;
  region: string;
  /** Region of the replica buckets (cross-region replication). */
  replicaRegion: string;
  availabilityZones: string[];
  /** CIDR of the platform VPC (load balancer, api, worker, database). */
  vpcCidr: string;
  /** CIDR of the machines VPC: machine VMs live there, with no peering to the platform VPC. */
  machinesVpcCidr: string;
  /** One NAT gateway for all private subnets (cheaper) or one per zone (survives a zone). */
  natGateways: 'single' | 'perAz';
  /** CIDRs allowed to reach the load balancer. */
  ingressCidrs: string[];
  /** ACM certificate for HTTPS on the load balancer; plain HTTP on port 80 without one. */
  certificateArn: string | undefined;
  database: {
    instanceClass: string;
    allocatedStorageGb: number;
    engineVersion: string;
    /** Days of automated backups (point-in-time recovery window); at least 7. */
    backupRetentionDays: number;
    multiAz: boolean;
    deletionProtection: boolean;
    password: pulumi.Output<string>;
  };
  api: { cpu: number; memoryMiB: number; desiredCount: number };
  worker: { cpu: number; memoryMiB: number; desiredCount: number; onDemandBase: number; spotWeight: number };
  /** Container image of api and worker; default the stack's ECR repository at `imageTag`. */
  image: string | undefined;
  imageTag: string;
  machines: {
    /** AMI every machine boots (sh, curl, tar, util-linux). */
    imageId: string;
    rootVolumeGb: number;
    instanceTypes: Record<VmProfile, string>;
  };
  temporal: TemporalSettings;
  adminKey: pulumi.Output<string>;
  /** AUTOVIBE_SECRETS_KEY: seals secrets at rest in the database; api and worker need the same one. */
  secretsKey: pulumi.Output<string>;
  /** Days a machine's exchange files stay in the workspaces bucket. */
  workspaceRetentionDays: number;
  logRetentionDays: number;
}

export class SettingsError extends Error {
  override name = 'SettingsError';
}

/** Reads and checks the stack configuration (namespace `autovibe`; the region from `aws:region`). */
export function readSettings(): Settings {
  const c = new pulumi.Config('autovibe');
  const awsConfig = new pulumi.Config('aws');
  const environment = pulumi.getStack();
  const prod = environment === 'prod';
  const database = c.getObject<Partial<Settings['database']>>('database') ?? {};
  const api = c.getObject<Partial<Settings['api']>>('api') ?? {};
  const worker = c.getObject<Partial<Settings['worker']>>('worker') ?? {};
  const machines = c.getObject<{ imageId?: string; rootVolumeGb?: number; instanceTypes?: Partial<Record<VmProfile, string>> }>('machines') ?? {};
  const temporal = c.getObject<{ address?: string; namespace?: string; tls?: boolean; serverName?: string }>('temporal') ?? {};
  const settings: Settings = {
    project: pulumi.getProject(),
    environment,
    region: awsConfig.require('region'),
    replicaRegion: c.require('replicaRegion'),
    availabilityZones: c.requireObject<string[]>('availabilityZones'),
    vpcCidr: c.get('vpcCidr') ?? '10.20.0.0/16',
    machinesVpcCidr: c.get('machinesVpcCidr') ?? '10.30.0.0/16',
    natGateways: (c.get('natGateways') ?? (prod ? 'perAz' : 'single')) as Settings['natGateways'],
    ingressCidrs: c.getObject<string[]>('ingressCidrs') ?? ['0.0.0.0/0'],
    certificateArn: c.get('certificateArn'),
    database: {
      instanceClass: database.instanceClass ?? 'db.t4g.micro',
      allocatedStorageGb: database.allocatedStorageGb ?? 20,
      engineVersion: database.engineVersion ?? '16',
      backupRetentionDays: database.backupRetentionDays ?? 7,
      multiAz: database.multiAz ?? prod,
      deletionProtection: database.deletionProtection ?? prod,
      password: c.requireSecret('dbPassword'),
    },
    api: { cpu: api.cpu ?? 512, memoryMiB: api.memoryMiB ?? 1024, desiredCount: api.desiredCount ?? (prod ? 2 : 1) },
    worker: {
      cpu: worker.cpu ?? 1024,
      memoryMiB: worker.memoryMiB ?? 2048,
      desiredCount: worker.desiredCount ?? (prod ? 2 : 1),
      onDemandBase: worker.onDemandBase ?? (prod ? 1 : 0),
      spotWeight: worker.spotWeight ?? 1,
    },
    image: c.get('image'),
    imageTag: c.get('imageTag') ?? 'latest',
    machines: {
      imageId: machines.imageId ?? '',
      rootVolumeGb: machines.rootVolumeGb ?? 30,
      instanceTypes: { lightweight: 't3a.small', standard: 't3a.large', large: 'm6a.2xlarge', ...machines.instanceTypes },
    },
    temporal: {
      address: temporal.address ?? '',
      namespace: temporal.namespace ?? 'default',
      tls: temporal.tls ?? false,
      serverName: temporal.serverName,
      clientCert: c.getSecret('temporalClientCert'),
      clientKey: c.getSecret('temporalClientKey'),
      serverCa: c.getSecret('temporalServerCa'),
      apiKey: c.getSecret('temporalApiKey'),
    },
    adminKey: c.requireSecret('adminKey'),
    secretsKey: c.requireSecret('secretsKey'),
    workspaceRetentionDays: c.getNumber('workspaceRetentionDays') ?? 7,
    logRetentionDays: c.getNumber('logRetentionDays') ?? (prod ? 90 : 14),
  };
  checkSettings(settings);
  return settings;
}

/** Refuses a configuration that would deploy something unsafe or unusable, naming what to fix. */
export function checkSettings(s: Settings): void {
  const problems: string[] = [];
  if (s.availabilityZones.length < 2) problems.push('autovibe:availabilityZones needs at least two zones (RDS and the load balancer span two)');
  if (s.replicaRegion === s.region) problems.push('autovibe:replicaRegion must differ from aws:region (cross-region replication)');
  if (!Number.isInteger(s.database.backupRetentionDays) || s.database.backupRetentionDays < 7 || s.database.backupRetentionDays > 35)
    problems.push('autovibe:database.backupRetentionDays must be 7 to 35 (days of point-in-time recovery)');
  if (!['single', 'perAz'].includes(s.natGateways)) problems.push('autovibe:natGateways must be "single" or "perAz"');
  if (!s.machines.imageId) problems.push('autovibe:machines.imageId is required (the AMI machine VMs boot)');
  if (!s.temporal.address) problems.push('autovibe:temporal.address is required (host:port of the Temporal frontend)');
  if (Boolean(s.temporal.clientCert) !== Boolean(s.temporal.clientKey))
    problems.push('autovibe:temporalClientCert and autovibe:temporalClientKey go together (mTLS needs both the certificate and its key)');
  if (problems.length) throw new SettingsError(`invalid stack configuration: ${problems.join('; ')}`);
}

/** Whether the platform connects to Temporal over TLS. */
export function temporalUsesTls(t: TemporalSettings): boolean {
  return t.tls || Boolean(t.clientCert) || Boolean(t.apiKey) || Boolean(t.serverCa);
}
