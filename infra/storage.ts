/**
 * S3 buckets: `data` (project repositories, snapshots, logs, artifacts, backups) replicated to a
 * bucket in the replica region, and `workspaces` (the files a machine VM exchanges with the worker
 * through presigned URLs; transient, expired after `workspaceRetentionDays`, so not replicated).
 * Every bucket: SSE, all four public-access blocks, versioning, bucket-owner-enforced ownership.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { Settings } from './settings.js';
import { prefix, tagsFor } from './tags.js';

export interface Storage {
  /** KMS keys of the buckets: one in the primary region, one in the replica region. */
  key: aws.kms.Key;
  replicaKey: aws.kms.Key;
  data: aws.s3.Bucket;
  dataReplica: aws.s3.Bucket;
  workspaces: aws.s3.Bucket;
  replicationRole: aws.iam.Role;
}

/** Versioning of each bucket, which replication must wait for. */
const versioningOf = new Map<aws.s3.Bucket, aws.s3.BucketVersioning>();

function secureBucket(id: string, s: Settings, key: aws.kms.Key, opts: pulumi.CustomResourceOptions = {}): aws.s3.Bucket {
  const tags = tagsFor(s, 'storage');
  const bucket = new aws.s3.Bucket(id, { bucketPrefix: `${id}-`, forceDestroy: false, tags }, opts);
  new aws.s3.BucketServerSideEncryptionConfiguration(
    id,
    { bucket: bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: key.arn }, bucketKeyEnabled: true }] },
    opts,
  );
  new aws.s3.BucketPublicAccessBlock(
    id,
    { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
    opts,
  );
  new aws.s3.BucketOwnershipControls(id, { bucket: bucket.id, rule: { objectOwnership: 'BucketOwnerEnforced' } }, opts);
  versioningOf.set(bucket, new aws.s3.BucketVersioning(id, { bucket: bucket.id, versioningConfiguration: { status: 'Enabled' } }, opts));
  // TLS only: refuse any request not made over HTTPS.
  new aws.s3.BucketPolicy(
    id,
    {
      bucket: bucket.id,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'DenyInsecureTransport',
            Effect: 'Deny',
            Principal: '*',
            Action: 's3:*',
            Resource: [bucket.arn, pulumi.interpolate`${bucket.arn}/*`],
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
        ],
      }),
    },
    opts,
  );
  return bucket;
}

export function createStorage(s: Settings, replicaProvider: aws.Provider): Storage {
  const name = prefix(s);
  const keyArgs = { enableKeyRotation: true, deletionWindowInDays: 30, tags: tagsFor(s, 'storage') };
  const key = new aws.kms.Key(`${name}-storage`, { ...keyArgs, description: `${name} buckets` });
  const replicaKey = new aws.kms.Key(`${name}-storage-replica`, { ...keyArgs, description: `${name} replica buckets` }, { provider: replicaProvider });
  const data = secureBucket(`${name}-data`, s, key);
  const dataReplica = secureBucket(`${name}-data-replica`, s, replicaKey, { provider: replicaProvider });
  const workspaces = secureBucket(`${name}-workspaces`, s, key);
  new aws.s3.BucketLifecycleConfiguration(`${name}-workspaces`, {
    bucket: workspaces.id,
    rules: [
      {
        id: 'expire-exchange-files',
        status: 'Enabled',
        filter: {},
        expiration: { days: s.workspaceRetentionDays },
        noncurrentVersionExpiration: { noncurrentDays: 1 },
      },
      { id: 'abort-uploads', status: 'Enabled', filter: {}, abortIncompleteMultipartUpload: { daysAfterInitiation: 1 } },
    ],
  });
  new aws.s3.BucketLifecycleConfiguration(`${name}-data`, {
    bucket: data.id,
    rules: [{ id: 'old-versions', status: 'Enabled', filter: {}, noncurrentVersionExpiration: { noncurrentDays: 90 } }],
  });

  const replicationRole = new aws.iam.Role(`${name}-replication`, {
    assumeRolePolicy: JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { Service: 's3.amazonaws.com' }, Action: 'sts:AssumeRole' }],
    }),
    tags: tagsFor(s, 'storage'),
  });
  new aws.iam.RolePolicy(`${name}-replication`, {
    role: replicationRole.id,
    policy: pulumi.jsonStringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['s3:GetReplicationConfiguration', 's3:ListBucket'], Resource: [data.arn] },
        {
          Effect: 'Allow',
          Action: ['s3:GetObjectVersionForReplication', 's3:GetObjectVersionAcl', 's3:GetObjectVersionTagging'],
          Resource: [pulumi.interpolate`${data.arn}/*`],
        },
        { Effect: 'Allow', Action: ['s3:ReplicateObject', 's3:ReplicateDelete', 's3:ReplicateTags'], Resource: [pulumi.interpolate`${dataReplica.arn}/*`] },
        // SSE-KMS objects: decrypt in the primary region, encrypt in the replica's.
        { Effect: 'Allow', Action: ['kms:Decrypt'], Resource: [key.arn] },
        { Effect: 'Allow', Action: ['kms:Encrypt', 'kms:GenerateDataKey'], Resource: [replicaKey.arn] },
      ],
    }),
  });
  new aws.s3.BucketReplicationConfig(
    `${name}-data`,
    {
      bucket: data.id,
      role: replicationRole.arn,
      rules: [
        {
          id: 'replica-region',
          status: 'Enabled',
          filter: {},
          deleteMarkerReplication: { status: 'Enabled' },
          sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: 'Enabled' } },
          destination: {
            bucket: dataReplica.arn,
            storageClass: 'STANDARD_IA',
            encryptionConfiguration: { replicaKmsKeyId: replicaKey.arn },
          },
        },
      ],
    },
    { dependsOn: [versioningOf.get(data)!, versioningOf.get(dataReplica)!] },
  );
  return { key, replicaKey, data, dataReplica, workspaces, replicationRole };
}
