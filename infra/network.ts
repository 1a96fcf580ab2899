/**
 * Two VPCs. The platform VPC holds the load balancer (public subnets), the api and worker tasks
 * (private subnets, out through NAT) and the database (isolated subnets: no route out at all). The
 * machines VPC holds the machine VMs, which run untrusted agent code: public subnets for their
 * egress, and no peering, transit gateway or route to the platform VPC, so no path to the database.
 */
import * as aws from '@pulumi/aws';
import type { Settings } from './settings.js';
import { prefix, tagsFor } from './tags.js';

export interface Network {
  vpc: aws.ec2.Vpc;
  publicSubnets: aws.ec2.Subnet[];
  privateSubnets: aws.ec2.Subnet[];
  databaseSubnets: aws.ec2.Subnet[];
  machinesVpc: aws.ec2.Vpc;
  machineSubnets: aws.ec2.Subnet[];
}

/** The n-th /20 of a /16 (10.20.0.0/16, 3 -> 10.20.48.0/20). */
export function subnetCidr(vpcCidr: string, n: number): string {
  const [a, b] = vpcCidr.split('.');
  return `${a}.${b}.${n * 16}.0/20`;
}

export function createNetwork(s: Settings): Network {
  const name = prefix(s);
  const tags = tagsFor(s, 'network');
  const zones = s.availabilityZones;

  const vpc = new aws.ec2.Vpc(`${name}-vpc`, {
    cidrBlock: s.vpcCidr,
    enableDnsHostnames: true,
    enableDnsSupport: true,
    tags: { ...tags, Name: `${name}-vpc` },
  });
  const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags });

  const publicRt = new aws.ec2.RouteTable(`${name}-public`, { vpcId: vpc.id, routes: [{ cidrBlock: '0.0.0.0/0', gatewayId: igw.id }], tags });
  const publicSubnets = zones.map((zone, i) => {
    const subnet = new aws.ec2.Subnet(`${name}-public-${zone}`, {
      vpcId: vpc.id,
      availabilityZone: zone,
      cidrBlock: subnetCidr(s.vpcCidr, i),
      mapPublicIpOnLaunch: false,
      tags: { ...tags, Name: `${name}-public-${zone}`, tier: 'public' },
    });
    new aws.ec2.RouteTableAssociation(`${name}-public-${zone}`, { subnetId: subnet.id, routeTableId: publicRt.id });
    return subnet;
  });

  const natCount = s.natGateways === 'perAz' ? zones.length : 1;
  const nats = publicSubnets.slice(0, natCount).map((subnet, i) => {
    const zone = zones[i]!;
    const eip = new aws.ec2.Eip(`${name}-nat-${zone}`, { domain: 'vpc', tags });
    return new aws.ec2.NatGateway(`${name}-nat-${zone}`, { allocationId: eip.id, subnetId: subnet.id, tags }, { dependsOn: [igw] });
  });

  const privateSubnets = zones.map((zone, i) => {
    const subnet = new aws.ec2.Subnet(`${name}-private-${zone}`, {
      vpcId: vpc.id,
      availabilityZone: zone,
      cidrBlock: subnetCidr(s.vpcCidr, zones.length + i),
      tags: { ...tags, Name: `${name}-private-${zone}`, tier: 'private' },
    });
    const nat = nats[i % nats.length]!;
    const rt = new aws.ec2.RouteTable(`${name}-private-${zone}`, { vpcId: vpc.id, routes: [{ cidrBlock: '0.0.0.0/0', natGatewayId: nat.id }], tags });
    new aws.ec2.RouteTableAssociation(`${name}-private-${zone}`, { subnetId: subnet.id, routeTableId: rt.id });
    return subnet;
  });

  // Database subnets: a route table with only the VPC's local route.
  const isolatedRt = new aws.ec2.RouteTable(`${name}-database`, { vpcId: vpc.id, tags });
  const databaseSubnets = zones.map((zone, i) => {
    const subnet = new aws.ec2.Subnet(`${name}-database-${zone}`, {
      vpcId: vpc.id,
      availabilityZone: zone,
      cidrBlock: subnetCidr(s.vpcCidr, 2 * zones.length + i),
      tags: { ...tags, Name: `${name}-database-${zone}`, tier: 'database' },
    });
    new aws.ec2.RouteTableAssociation(`${name}-database-${zone}`, { subnetId: subnet.id, routeTableId: isolatedRt.id });
    return subnet;
  });

  const mtags = tagsFor(s, 'machines');
  const machinesVpc = new aws.ec2.Vpc(`${name}-machines-vpc`, {
    cidrBlock: s.machinesVpcCidr,
    enableDnsHostnames: true,
    enableDnsSupport: true,
    tags: { ...mtags, Name: `${name}-machines-vpc` },
  });
  const machinesIgw = new aws.ec2.InternetGateway(`${name}-machines-igw`, { vpcId: machinesVpc.id, tags: mtags });
  const machinesRt = new aws.ec2.RouteTable(`${name}-machines`, {
    vpcId: machinesVpc.id,
    routes: [{ cidrBlock: '0.0.0.0/0', gatewayId: machinesIgw.id }],
    tags: mtags,
  });
  const machineSubnets = zones.map((zone, i) => {
    const subnet = new aws.ec2.Subnet(`${name}-machines-${zone}`, {
      vpcId: machinesVpc.id,
      availabilityZone: zone,
      cidrBlock: subnetCidr(s.machinesVpcCidr, i),
      mapPublicIpOnLaunch: true,
      tags: { ...mtags, Name: `${name}-machines-${zone}`, tier: 'machines' },
    });
    new aws.ec2.RouteTableAssociation(`${name}-machines-${zone}`, { subnetId: subnet.id, routeTableId: machinesRt.id });
    return subnet;
  });

  // The default security groups keep no rules, so nothing falls back to their allow-within-group.
  new aws.ec2.DefaultSecurityGroup(`${name}-default`, { vpcId: vpc.id, tags });
  new aws.ec2.DefaultSecurityGroup(`${name}-machines-default`, { vpcId: machinesVpc.id, tags: mtags });

  return { vpc, publicSubnets, privateSubnets, databaseSubnets, machinesVpc, machineSubnets };
}
