/**
 * IAM roles per component, least privilege:
 * - api / worker task execution roles: pull the image, write their log group, read their own
 *   secrets (the only roles that can read any platform secret);
 * - api task role: the data bucket;
 * - worker task role: the data and workspaces buckets, the EC2 calls of the aws-ec2 compute
 *   provider (changes only to instances and snapshots it tagged), and passing the machine role;
 * - machine VM role (instance profile): no policy at all. A machine talks to the platform only
 *   through presigned URLs the worker signs, so the untrusted code on it holds no AWS permission:
 *   no Secrets Manager, no SSM, no platform bucket.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { Secrets } from './secrets.js';
import type { Settings } from './settings.js';
import type { Storage } from './storage.js';
import { prefix, tagsFor, type Component } from './tags.js';

/** The tag the aws-ec2 compute provider puts on every instance and snapshot it makes (activities/compute/aws-ec2.ts TAG_MANAGED). */
export const MANAGED_TAG = 'autovibe:managed';

export interface Roles {
  apiExecution: aws.iam.Role;
  workerExecution: aws.iam.Role;
  apiTask: aws.iam.Role;
  workerTask: aws.iam.Role;
  machine: aws.iam.Role;
  machineProfile: aws.iam.InstanceProfile;
}

export interface RoleInputs {
  storage: Storage;
  secrets: Secrets;
  repository: aws.ecr.Repository;
  apiLogGroup: aws.cloudwatch.LogGroup;
  workerLogGroup: aws.cloudwatch.LogGroup;
}

const assumedBy = (service: string) =>
  JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: service }, Action: 'sts:AssumeRole' }] });

type Statement = Record<string, unknown>;

function role(s: Settings, id: string, component: Component, service: string, statements: Statement[]): aws.iam.Role {
  const name = prefix(s);
  const r = new aws.iam.Role(`${name}-${id}`, { assumeRolePolicy: assumedBy(service), tags: tagsFor(s, component) });
  if (statements.length)
    new aws.iam.RolePolicy(`${name}-${id}`, { role: r.id, policy: pulumi.jsonStringify({ Version: '2012-10-17', Statement: statements }) });
  return r;
}

function executionStatements(repository: aws.ecr.Repository, logGroup: aws.cloudwatch.LogGroup, secrets: Secrets['api']): Statement[] {
  return [
    { Effect: 'Allow', Action: ['ecr:GetAuthorizationToken'], Resource: '*' },
    { Effect: 'Allow', Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'], Resource: [repository.arn] },
    { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: [pulumi.interpolate`${logGroup.arn}:*`] },
    { Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: secrets.map((x) => x.secret.arn) },
  ];
}

function bucketStatements(storage: Storage, buckets: aws.s3.Bucket[]): Statement[] {
  return [
    { Effect: 'Allow', Action: ['s3:ListBucket', 's3:GetBucketLocation'], Resource: buckets.map((b) => b.arn) },
    {
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
      Resource: buckets.map((b) => pulumi.interpolate`${b.arn}/*`),
    },
    { Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: [storage.key.arn] },
  ];
}

export function createRoles(s: Settings, x: RoleInputs): Roles {
  const name = prefix(s);
  const apiExecution = role(s, 'api-execution', 'api', 'ecs-tasks.amazonaws.com', executionStatements(x.repository, x.apiLogGroup, x.secrets.api));
  const workerExecution = role(
    s,
    'worker-execution',
    'worker',
    'ecs-tasks.amazonaws.com',
    executionStatements(x.repository, x.workerLogGroup, x.secrets.worker),
  );
  const apiTask = role(s, 'api-task', 'api', 'ecs-tasks.amazonaws.com', bucketStatements(x.storage, [x.storage.data]));

  const machine = role(s, 'machine', 'machines', 'ec2.amazonaws.com', []);
  const machineProfile = new aws.iam.InstanceProfile(`${name}-machine`, { role: machine.name, tags: tagsFor(s, 'machines') });
  const managed = { StringEquals: { [`aws:ResourceTag/${MANAGED_TAG}`]: 'true' } };
  const workerTask = role(s, 'worker-task', 'worker', 'ecs-tasks.amazonaws.com', [
    ...bucketStatements(x.storage, [x.storage.data, x.storage.workspaces]),
    {
      Sid: 'Read',
      Effect: 'Allow',
      Action: [
        'ec2:DescribeInstances',
        'ec2:DescribeSpotPriceHistory',
        'ec2:DescribeSpotInstanceRequests',
        'ec2:DescribeSubnets',
        'ec2:DescribeImages',
        'ec2:DescribeSnapshots',
        'ec2:DescribeAvailabilityZones',
        'ec2:DescribeLaunchTemplates',
        'ec2:DescribeLaunchTemplateVersions',
      ],
      Resource: '*',
    },
    {
      Sid: 'Launch',
      Effect: 'Allow',
      Action: ['ec2:RunInstances', 'ec2:CreateTags'],
      Resource: '*',
      Condition: { StringEquals: { 'aws:RequestedRegion': s.region } },
    },
    {
      Sid: 'OnlyItsOwn',
      Effect: 'Allow',
      Action: ['ec2:TerminateInstances', 'ec2:CreateSnapshot', 'ec2:CopySnapshot', 'ec2:DeleteSnapshot'],
      Resource: '*',
      Condition: managed,
    },
    {
      Sid: 'PassMachineRole',
      Effect: 'Allow',
      Action: ['iam:PassRole'],
      Resource: [machine.arn],
      Condition: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
    },
  ]);
  return { apiExecution, workerExecution, apiTask, workerTask, machine, machineProfile };
}
