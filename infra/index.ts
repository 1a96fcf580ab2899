/**
 * AutoVibe on AWS (README "Deploying to AWS (infra/)"): `pulumi up` in this folder with a stack
 * (Pulumi.dev.yaml, Pulumi.prod.yaml). The stack's outputs are this module's exports.
 */
import { readSettings } from './settings.js';
import { deploy } from './stack.js';

const out = deploy(readSettings());

export const vpcId = out.vpcId;
export const machinesVpcId = out.machinesVpcId;
export const apiUrl = out.apiUrl;
export const imageRepository = out.imageRepository;
export const image = out.image;
export const clusterName = out.clusterName;
export const databaseEndpoint = out.databaseEndpoint;
export const dataBucket = out.dataBucket;
export const dataReplicaBucket = out.dataReplicaBucket;
export const workspacesBucket = out.workspacesBucket;
export const machineInstanceProfile = out.machineInstanceProfile;
export const launchTemplates = out.launchTemplates;
