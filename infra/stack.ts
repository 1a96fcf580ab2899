/** The whole deployment of one stack, composed from the component modules. */
import * as aws from '@pulumi/aws';
import { createDatabase } from './database.js';
import { createRoles } from './iam.js';
import { createLaunchTemplates } from './machines.js';
import { createNetwork } from './network.js';
import { createSecrets } from './secrets.js';
import { createSecurityGroups } from './security.js';
import { createRegistry, createServices } from './services.js';
import type { Settings } from './settings.js';
import { createStorage } from './storage.js';
import { prefix } from './tags.js';

export function deploy(s: Settings) {
  const replicaProvider = new aws.Provider(`${prefix(s)}-replica`, { region: s.replicaRegion as aws.Region });
  const net = createNetwork(s);
  const sg = createSecurityGroups(s, net, Boolean(s.certificateArn));
  const storage = createStorage(s, replicaProvider);
  const db = createDatabase(s, net, sg);
  const secrets = createSecrets(s, db);
  const registry = createRegistry(s);
  const roles = createRoles(s, {
    storage,
    secrets,
    repository: registry.repository,
    apiLogGroup: registry.apiLogGroup,
    workerLogGroup: registry.workerLogGroup,
  });
  const launchTemplates = createLaunchTemplates(s, sg, roles);
  const services = createServices(s, { net, sg, roles, secrets, storage, registry, machineSubnetIds: net.machineSubnets.map((x) => x.id) });
  return {
    vpcId: net.vpc.id,
    machinesVpcId: net.machinesVpc.id,
    apiUrl: services.loadBalancer.dnsName.apply((dns) => `${s.certificateArn ? 'https' : 'http'}://${dns}`),
    imageRepository: registry.repository.repositoryUrl,
    image: services.image,
    clusterName: services.cluster.name,
    databaseEndpoint: db.instance.endpoint,
    dataBucket: storage.data.bucket,
    dataReplicaBucket: storage.dataReplica.bucket,
    workspacesBucket: storage.workspaces.bucket,
    machineInstanceProfile: roles.machineProfile.arn,
    launchTemplates: Object.fromEntries(Object.entries(launchTemplates).map(([k, v]) => [k, v.id])),
  };
}
