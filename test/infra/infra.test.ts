/**
 * infra/ under Pulumi mocks: the policies the deployment must keep, checked on what the program
 * declares for the dev and prod stacks (infra/Pulumi.dev.yaml, infra/Pulumi.prod.yaml). No Pulumi
 * CLI, no AWS account, no platform services.
 */
import assert from 'node:assert/strict';
import { actions, declareStack, importProgram, isTaggable, statements, stackConfig, type Declared } from './pulumi-mocks.js';

const T = {
  bucket: 'aws:s3/bucket:Bucket',
  sse: 'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration',
  pab: 'aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock',
  versioning: 'aws:s3/bucketVersioning:BucketVersioning',
  replication: 'aws:s3/bucketReplicationConfig:BucketReplicationConfig',
  bucketPolicy: 'aws:s3/bucketPolicy:BucketPolicy',
  provider: 'pulumi:providers:aws',
  launchTemplate: 'aws:ec2/launchTemplate:LaunchTemplate',
  role: 'aws:iam/role:Role',
  rolePolicy: 'aws:iam/rolePolicy:RolePolicy',
  instanceProfile: 'aws:iam/instanceProfile:InstanceProfile',
  secret: 'aws:secretsmanager/secret:Secret',
  rds: 'aws:rds/instance:Instance',
  sg: 'aws:ec2/securityGroup:SecurityGroup',
  ingress: 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule',
  routeTable: 'aws:ec2/routeTable:RouteTable',
  subnet: 'aws:ec2/subnet:Subnet',
  service: 'aws:ecs/service:Service',
};

/** Resource types that would attach to or bridge into a VPC or give a role permissions indirectly. */
const BRIDGES = ['aws:ec2/vpcPeeringConnection:VpcPeeringConnection', 'aws:ec2transitgateway/vpcAttachment:VpcAttachment', 'aws:ec2/vpnGateway:VpnGateway'];
const PERMISSION_ATTACHMENTS = [
  'aws:iam/rolePolicyAttachment:RolePolicyAttachment',
  'aws:iam/policyAttachment:PolicyAttachment',
  'aws:iam/rolePoliciesExclusive:RolePoliciesExclusive',
];

const of = (d: Declared[], type: string) => d.filter((r) => r.type === type);
const one = (d: Declared[], type: string, pred: (r: Declared) => boolean = () => true) => {
  const found = of(d, type).filter(pred);
  assert.equal(found.length, 1, `expected one ${type}, found ${found.map((r) => r.name).join(', ') || 'none'}`);
  return found[0]!;
};
/** What a reference to `r` looks like in another resource's inputs (its id, name or ARN). */
const refs = (r: Declared) => [r.id, r.arn, r.name, r.inputs.name].filter(Boolean);
const refersTo = (value: unknown, r: Declared) => refs(r).includes(value);

for (const stack of ['dev', 'prod'] as const) {
  describe(`infra/ stack ${stack} (Pulumi mocks)`, function () {
    let d: Declared[];
    const region = JSON.parse(JSON.stringify(stackConfig(stack)['aws:region']));

    before(async function () {
      d = await declareStack(stack);
    });

    it('tags every taggable resource with project, environment and component (launched instances and volumes too)', function () {
      const components = new Set(['network', 'api', 'worker', 'database', 'storage', 'machines', 'cluster', 'secrets']);
      let checked = 0;
      for (const r of d) {
        if (r.type === T.provider || !isTaggable(r.type)) continue;
        checked++;
        const tags = r.inputs.tags as Record<string, string> | undefined;
        assert.ok(tags, `${r.type} ${r.name} has no tags`);
        assert.equal(tags.project, 'autovibe', `${r.name}: tag project`);
        assert.equal(tags.environment, stack, `${r.name}: tag environment`);
        assert.ok(components.has(tags.component!), `${r.name}: tag component ${tags.component}`);
      }
      assert.ok(checked > 50, `only ${checked} taggable resources checked`);
      for (const lt of of(d, T.launchTemplate)) {
        const specs = lt.inputs.tagSpecifications as { resourceType: string; tags: Record<string, string> }[];
        for (const kind of ['instance', 'volume']) {
          const spec = specs.find((s) => s.resourceType === kind);
          assert.equal(spec?.tags.environment, stack, `${lt.name}: ${kind}s it launches are tagged`);
          assert.equal(spec?.tags.component, 'machines');
        }
      }
    });

    it('encrypts, versions and closes every bucket to the public, and allows no public bucket policy', function () {
      const buckets = of(d, T.bucket);
      assert.equal(buckets.length, 3);
      for (const b of buckets) {
        const sse = one(d, T.sse, (r) => refersTo(r.inputs.bucket, b));
        const rule = sse.inputs.rules[0].applyServerSideEncryptionByDefault;
        assert.ok(['aws:kms', 'AES256'].includes(rule.sseAlgorithm), `${b.name}: SSE ${rule.sseAlgorithm}`);
        if (rule.sseAlgorithm === 'aws:kms') assert.ok(rule.kmsMasterKeyId, `${b.name}: its KMS key`);
        const pab = one(d, T.pab, (r) => refersTo(r.inputs.bucket, b));
        for (const k of ['blockPublicAcls', 'blockPublicPolicy', 'ignorePublicAcls', 'restrictPublicBuckets'])
          assert.equal(pab.inputs[k], true, `${b.name}: ${k}`);
        const v = one(d, T.versioning, (r) => refersTo(r.inputs.bucket, b));
        assert.equal(v.inputs.versioningConfiguration.status, 'Enabled', `${b.name}: versioning`);
        assert.equal(b.inputs.acl, undefined, `${b.name}: no canned ACL`);
      }
      for (const p of of(d, T.bucketPolicy)) {
        for (const st of statements(p.inputs.policy)) {
          assert.ok(!(st.Effect === 'Allow' && (st.Principal === '*' || JSON.stringify(st.Principal).includes('"*"'))), `${p.name}: allows everyone`);
        }
      }
      assert.equal(of(d, 'aws:s3/bucketAcl:BucketAcl').length, 0);
    });

    it('replicates every primary bucket but the transient workspaces one to an encrypted bucket in the replica region', function () {
      const replicaProvider = one(d, T.provider);
      const replicaRegion = replicaProvider.inputs.region;
      assert.ok(replicaRegion && replicaRegion !== region, `replica region ${replicaRegion} differs from ${region}`);
      const inReplica = (r: Declared) => Boolean(r.provider?.includes(`::${replicaProvider.name}::`));
      const primaries = of(d, T.bucket).filter((b) => !inReplica(b));
      const replicas = of(d, T.bucket).filter(inReplica);
      assert.ok(replicas.length >= 1, 'a bucket in the replica region');
      for (const b of primaries) {
        if (b.name.endsWith('-workspaces')) continue;
        const rep = one(d, T.replication, (r) => refersTo(r.inputs.bucket, b));
        const rule = rep.inputs.rules[0];
        assert.equal(rule.status, 'Enabled');
        const target = replicas.find((x) => refersTo(rule.destination.bucket, x));
        assert.ok(target, `${b.name} replicates to a bucket of the replica region`);
        assert.ok(rule.destination.encryptionConfiguration?.replicaKmsKeyId, 'replicas encrypted with a key of the replica region');
        assert.equal(rule.sourceSelectionCriteria?.sseKmsEncryptedObjects?.status, 'Enabled', 'KMS-encrypted objects are replicated');
      }
    });

    it('requires IMDSv2 on every launch template: three profiles, spot and on-demand, encrypted root volumes', function () {
      const lts = of(d, T.launchTemplate);
      assert.equal(lts.length, 6);
      for (const lt of lts) {
        assert.equal(lt.inputs.metadataOptions?.httpTokens, 'required', `${lt.name}: IMDSv2`);
        assert.equal(lt.inputs.metadataOptions?.httpPutResponseHopLimit, 1, `${lt.name}: one hop`);
        for (const m of lt.inputs.blockDeviceMappings) assert.equal(m.ebs.encrypted, 'true', `${lt.name}: encrypted volume`);
        assert.equal(lt.inputs.instanceMarketOptions?.marketType, lt.name.endsWith('-spot') ? 'spot' : undefined, `${lt.name}: market`);
      }
      for (const profile of ['lightweight', 'standard', 'large']) {
        for (const market of ['spot', 'on-demand'])
          assert.ok(
            lts.some((lt) => lt.name.endsWith(`-${profile}-${market}`)),
            `${profile} ${market}`,
          );
      }
    });

    it('gives the machine VM instance profile no permission: no secrets, no SSM, no platform bucket, no KMS', function () {
      const profile = one(d, T.instanceProfile);
      const role = one(d, T.role, (r) => refersTo(profile.inputs.role, r));
      assert.match(role.inputs.assumeRolePolicy, /ec2\.amazonaws\.com/);
      for (const lt of of(d, T.launchTemplate)) assert.equal(lt.inputs.iamInstanceProfile.arn, profile.arn, `${lt.name} uses the machine profile`);
      for (const type of PERMISSION_ATTACHMENTS) {
        for (const a of of(d, type))
          assert.ok(
            !refersTo(a.inputs.role, role) && !(a.inputs.roles ?? []).some((x: unknown) => refersTo(x, role)),
            `${a.name} attaches a policy to the machine role`,
          );
      }
      const forbidden = /^(secretsmanager|ssm|ssmmessages|ec2messages|kms|s3|iam|sts):|^\*$/;
      for (const p of of(d, T.rolePolicy).filter((p) => refersTo(p.inputs.role, role))) {
        for (const st of statements(p.inputs.policy)) {
          for (const a of actions(st)) assert.doesNotMatch(a, forbidden, `${p.name}: the machine role may not ${a}`);
        }
      }
      // And no bucket policy grants it anything.
      for (const p of of(d, T.bucketPolicy)) assert.ok(!String(p.inputs.policy).includes(role.arn), `${p.name} names the machine role`);
    });

    it('lets only the api and worker execution roles read secrets, each only named secrets; no wildcard admin anywhere', function () {
      const secretArns = new Set(of(d, T.secret).map((s) => s.arn));
      assert.ok(secretArns.size >= 2);
      const readers = new Set<string>();
      for (const p of of(d, T.rolePolicy)) {
        const role = one(d, T.role, (r) => refersTo(p.inputs.role, r));
        for (const st of statements(p.inputs.policy)) {
          for (const a of actions(st)) {
            assert.notEqual(a, '*', `${p.name}: Action *`);
            assert.doesNotMatch(a, /^[a-z0-9-]+:\*$/, `${p.name}: ${a}`);
            if (/^(secretsmanager|ssm):/.test(a) && st.Effect === 'Allow') {
              readers.add(role.name);
              const resources = [st.Resource].flat();
              for (const res of resources) assert.ok(secretArns.has(res as string), `${p.name}: ${a} on ${String(res)}, not one of the platform's secrets`);
            }
          }
        }
      }
      assert.deepEqual([...readers].sort(), [`autovibe-${stack}-api-execution`, `autovibe-${stack}-worker-execution`]);
    });

    it('keeps Postgres private, encrypted, backed up for point-in-time recovery (and protected from deletion in prod)', function () {
      const db = one(d, T.rds);
      assert.equal(db.inputs.publiclyAccessible, false);
      assert.equal(db.inputs.storageEncrypted, true);
      assert.ok(db.inputs.backupRetentionPeriod >= 7, `backup retention ${db.inputs.backupRetentionPeriod} days`);
      if (stack === 'prod') {
        assert.equal(db.inputs.deletionProtection, true);
        assert.equal(db.inputs.multiAz, true);
        assert.equal(db.inputs.skipFinalSnapshot, false);
      }
      // Its subnets route nowhere but inside the VPC.
      const group = one(d, 'aws:rds/subnetGroup:SubnetGroup', (r) => refersTo(db.inputs.dbSubnetGroupName, r));
      for (const subnetId of group.inputs.subnetIds) {
        const subnet = one(d, T.subnet, (r) => r.id === subnetId);
        const assoc = one(d, 'aws:ec2/routeTableAssociation:RouteTableAssociation', (r) => r.inputs.subnetId === subnet.id);
        const table = one(d, T.routeTable, (r) => r.id === assoc.inputs.routeTableId);
        assert.deepEqual(table.inputs.routes ?? [], [], `${subnet.name} routes out`);
      }
    });

    it('opens the api only to its load balancer, Postgres only to api and worker, and workers and machines to nothing', function () {
      const sgs = of(d, T.sg);
      const sgNamed = (suffix: string) => one(d, T.sg, (r) => r.name === `autovibe-${stack}-${suffix}`);
      const [lb, api, worker, database, machines] = ['lb', 'api', 'worker', 'database', 'machines'].map(sgNamed) as Declared[];
      for (const sg of sgs) assert.ok(!sg.inputs.ingress?.length, `${sg.name}: no inline ingress`);
      for (const sg of of(d, 'aws:ec2/defaultSecurityGroup:DefaultSecurityGroup'))
        assert.ok(!sg.inputs.ingress?.length && !sg.inputs.egress?.length, `${sg.name}: default group keeps no rules`);
      const ingressOf = (sg: Declared) => of(d, T.ingress).filter((r) => r.inputs.securityGroupId === sg.id);

      const lbPort = stack === 'prod' ? 443 : 80;
      for (const r of ingressOf(lb!)) {
        assert.equal(r.inputs.fromPort, lbPort);
        assert.equal(r.inputs.toPort, lbPort);
      }
      assert.ok(ingressOf(lb!).length >= 1);
      const apiIn = ingressOf(api!);
      assert.equal(apiIn.length, 1);
      assert.equal(apiIn[0]!.inputs.referencedSecurityGroupId, lb!.id, 'api only from the load balancer');
      assert.equal(apiIn[0]!.inputs.cidrIpv4, undefined);
      assert.equal(apiIn[0]!.inputs.fromPort, 3000);
      assert.deepEqual(ingressOf(worker!), [], 'worker: no inbound');
      assert.deepEqual(ingressOf(machines!), [], 'machines: no inbound');
      const dbIn = ingressOf(database!);
      assert.deepEqual(dbIn.map((r) => r.inputs.referencedSecurityGroupId).sort(), [api!.id, worker!.id].sort(), 'Postgres only from api and worker');
      for (const r of dbIn) {
        assert.equal(r.inputs.fromPort, 5432);
        assert.equal(r.inputs.cidrIpv4, undefined);
      }
      // Machines: in their own VPC, no bridge to the platform VPC, so no route to Postgres.
      assert.notEqual(machines!.inputs.vpcId, database!.inputs.vpcId, 'machines live outside the platform VPC');
      for (const type of BRIDGES) assert.equal(of(d, type).length, 0, `${type} bridges the VPCs`);
      for (const t of of(d, T.routeTable)) {
        for (const route of t.inputs.routes ?? []) {
          assert.ok(!route.vpcPeeringConnectionId && !route.transitGatewayId, `${t.name}: route into another network`);
        }
      }
      for (const lt of of(d, T.launchTemplate)) assert.deepEqual(lt.inputs.vpcSecurityGroupIds, [machines!.id], `${lt.name}: machines group only`);
      // The services: private subnets, no public address; only the api behind the load balancer.
      for (const svc of of(d, T.service)) {
        assert.equal(svc.inputs.networkConfiguration.assignPublicIp, false, `${svc.name}: no public IP`);
        const subnets = svc.inputs.networkConfiguration.subnets.map((id: string) => one(d, T.subnet, (r) => r.id === id));
        for (const s of subnets) assert.equal(s.inputs.tags.tier, 'private', `${svc.name} in ${s.name}`);
      }
    });

    it('runs api and worker from the image on Fargate and Fargate Spot with their secrets and the Temporal endpoint', function () {
      const capacity = one(d, 'aws:ecs/clusterCapacityProviders:ClusterCapacityProviders');
      assert.deepEqual([...capacity.inputs.capacityProviders].sort(), ['FARGATE', 'FARGATE_SPOT']);
      const worker = one(d, T.service, (r) => r.name.endsWith('-worker'));
      assert.ok(worker.inputs.capacityProviderStrategies.some((s: { capacityProvider: string }) => s.capacityProvider === 'FARGATE_SPOT'));
      for (const component of ['api', 'worker']) {
        const task = one(d, 'aws:ecs/taskDefinition:TaskDefinition', (r) => r.name.endsWith(`-${component}`));
        const [container] = JSON.parse(task.inputs.containerDefinitions);
        assert.deepEqual(container.command, ['npm', 'run', component]);
        assert.match(container.image, /dkr\.ecr/);
        const env = Object.fromEntries(container.environment.map((e: { name: string; value: string }) => [e.name, e.value]));
        assert.match(env.TEMPORAL_ADDRESS, /:7233$/);
        assert.equal(env.AUTOVIBE_TEMPORAL_TLS, 'on');
        // Every api and worker shares one object store: the data bucket, which both task roles may use.
        assert.match(env.AUTOVIBE_OBJECT_STORE, /^s3:\/\/[a-z0-9][a-z0-9.-]+[a-z0-9]\/objects$/);
        const secretNames = container.secrets.map((s: { name: string }) => s.name);
        assert.ok(secretNames.includes('DATABASE_URL') && secretNames.includes('AUTOVIBE_TEMPORAL_API_KEY'), secretNames.join());
        assert.equal(secretNames.includes('AUTOVIBE_ADMIN_KEY'), component === 'api', `${component}: the admin key is the api's alone`);
        assert.ok(secretNames.includes('AUTOVIBE_SECRETS_KEY'), `${component}: api and worker open secrets at rest with the same key`);
        if (component === 'worker') {
          // The aws-ec2 provider launches machines with the no-inbound group, the empty instance profile, in the machines VPC.
          const machinesSg = one(d, T.sg, (r) => r.name.endsWith('-machines'));
          assert.equal(env.AUTOVIBE_AWS_EC2_SECURITY_GROUPS, machinesSg.id);
          assert.equal(env.AUTOVIBE_AWS_EC2_INSTANCE_PROFILE, one(d, T.instanceProfile).arn);
          for (const id of env.AUTOVIBE_AWS_EC2_SUBNETS.split(',')) assert.equal(one(d, T.subnet, (r) => r.id === id).inputs.vpcId, machinesSg.inputs.vpcId);
        }
        for (const e of container.environment)
          assert.doesNotMatch(String(e.value), /temporal-api-key-secret|p%40ss|admin-key-0123|c2VjcmV0cy1rZXkt/, `${e.name} holds a secret in plain text`);
      }
    });
  });
}

describe('infra/ settings and entry point', function () {
  it('refuses a half mTLS configuration, a short backup window, and a replica in the same region', async function () {
    await assert.rejects(
      declareStack('dev', (c) => (c['autovibe:temporalClientCert'] = '-----BEGIN CERTIFICATE-----')),
      /temporalClientCert and autovibe:temporalClientKey go together/,
    );
    await assert.rejects(
      declareStack('dev', (c) => (c['autovibe:database'] = JSON.stringify({ ...JSON.parse(c['autovibe:database']!), backupRetentionDays: 3 }))),
      /backupRetentionDays must be 7 to 35/,
    );
    await assert.rejects(
      declareStack('dev', (c) => (c['autovibe:replicaRegion'] = c['aws:region']!)),
      /replicaRegion must differ/,
    );
  });

  it('infra/index.ts is the program: imported under mocks it declares the stack and exports its outputs', async function () {
    const { declared, exports } = await importProgram('dev');
    assert.ok(declared.length > 50);
    assert.match(String(exports.apiUrl), /^http:\/\/.+\.elb\.example$/);
    assert.equal(Object.keys(exports.launchTemplates as object).length, 6);
    assert.ok(exports.dataReplicaBucket);
  });
});
