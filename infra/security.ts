/**
 * Security groups. Inbound: the load balancer from `ingressCidrs`; the api only from the load
 * balancer on its port; the worker and machine VMs nothing; Postgres only from the api and worker.
 * Rules are separate resources (one per rule) so each can be checked and changed alone.
 */
import * as aws from '@pulumi/aws';
import type { Network } from './network.js';
import type { Settings } from './settings.js';
import { prefix, tagsFor } from './tags.js';

export const API_PORT = 3000;
export const POSTGRES_PORT = 5432;

export interface SecurityGroups {
  loadBalancer: aws.ec2.SecurityGroup;
  api: aws.ec2.SecurityGroup;
  worker: aws.ec2.SecurityGroup;
  database: aws.ec2.SecurityGroup;
  machines: aws.ec2.SecurityGroup;
}

export function createSecurityGroups(s: Settings, net: Network, httpsOnly: boolean): SecurityGroups {
  const name = prefix(s);
  const group = (id: string, component: Parameters<typeof tagsFor>[1], vpcId: aws.ec2.Vpc['id'], description: string) =>
    new aws.ec2.SecurityGroup(`${name}-${id}`, { vpcId, description, tags: { ...tagsFor(s, component), Name: `${name}-${id}` } });
  const loadBalancer = group('lb', 'api', net.vpc.id, 'api load balancer: HTTPS (or HTTP) from the allowed CIDRs');
  const api = group('api', 'api', net.vpc.id, 'api tasks: only from the load balancer');
  const worker = group('worker', 'worker', net.vpc.id, 'worker tasks: no inbound');
  const database = group('database', 'database', net.vpc.id, 'Postgres: only from api and worker');
  const machines = group('machines', 'machines', net.machinesVpc.id, 'machine VMs: no inbound');

  const lbPort = httpsOnly ? 443 : 80;
  s.ingressCidrs.forEach((cidr, i) => {
    new aws.vpc.SecurityGroupIngressRule(`${name}-lb-in-${i}`, {
      securityGroupId: loadBalancer.id,
      cidrIpv4: cidr,
      ipProtocol: 'tcp',
      fromPort: lbPort,
      toPort: lbPort,
      tags: tagsFor(s, 'api'),
    });
  });
  new aws.vpc.SecurityGroupEgressRule(`${name}-lb-to-api`, {
    securityGroupId: loadBalancer.id,
    referencedSecurityGroupId: api.id,
    ipProtocol: 'tcp',
    fromPort: API_PORT,
    toPort: API_PORT,
    tags: tagsFor(s, 'api'),
  });
  new aws.vpc.SecurityGroupIngressRule(`${name}-api-from-lb`, {
    securityGroupId: api.id,
    referencedSecurityGroupId: loadBalancer.id,
    ipProtocol: 'tcp',
    fromPort: API_PORT,
    toPort: API_PORT,
    tags: tagsFor(s, 'api'),
  });
  for (const [id, sg, component] of [
    ['api', api, 'api'],
    ['worker', worker, 'worker'],
  ] as const) {
    new aws.vpc.SecurityGroupIngressRule(`${name}-database-from-${id}`, {
      securityGroupId: database.id,
      referencedSecurityGroupId: sg.id,
      ipProtocol: 'tcp',
      fromPort: POSTGRES_PORT,
      toPort: POSTGRES_PORT,
      tags: tagsFor(s, 'database'),
    });
    // Out: Postgres, Temporal, AWS APIs, model providers (through NAT).
    new aws.vpc.SecurityGroupEgressRule(`${name}-${id}-out`, { securityGroupId: sg.id, cidrIpv4: '0.0.0.0/0', ipProtocol: '-1', tags: tagsFor(s, component) });
  }
  // Machines reach the internet (package registries, the presigned workspace URLs) and nothing else in AWS.
  new aws.vpc.SecurityGroupEgressRule(`${name}-machines-out`, {
    securityGroupId: machines.id,
    cidrIpv4: '0.0.0.0/0',
    ipProtocol: '-1',
    tags: tagsFor(s, 'machines'),
  });
  return { loadBalancer, api, worker, database, machines };
}
