/**
 * RDS Postgres: encrypted storage, automated backups kept `backupRetentionDays` (point-in-time
 * recovery to any second in that window), never publicly accessible, in the isolated database
 * subnets behind a security group open only to the api and worker; deletion protection and a
 * final snapshot in prod.
 */
import * as aws from '@pulumi/aws';
import type { Network } from './network.js';
import type { SecurityGroups } from './security.js';
import type { Settings } from './settings.js';
import { prefix, tagsFor } from './tags.js';

export interface Database {
  instance: aws.rds.Instance;
}

export function createDatabase(s: Settings, net: Network, sg: SecurityGroups): Database {
  const name = prefix(s);
  const tags = tagsFor(s, 'database');
  const subnetGroup = new aws.rds.SubnetGroup(`${name}-db`, { subnetIds: net.databaseSubnets.map((x) => x.id), tags });
  const parameters = new aws.rds.ParameterGroup(`${name}-db`, {
    family: `postgres${s.database.engineVersion.split('.')[0]}`,
    // TLS only.
    parameters: [{ name: 'rds.force_ssl', value: '1' }],
    tags,
  });
  const prod = s.environment === 'prod';
  const instance = new aws.rds.Instance(`${name}-db`, {
    engine: 'postgres',
    engineVersion: s.database.engineVersion,
    instanceClass: s.database.instanceClass,
    allocatedStorage: s.database.allocatedStorageGb,
    maxAllocatedStorage: s.database.allocatedStorageGb * 5,
    storageType: 'gp3',
    storageEncrypted: true,
    dbName: 'autovibe',
    username: 'autovibe',
    password: s.database.password,
    dbSubnetGroupName: subnetGroup.name,
    parameterGroupName: parameters.name,
    vpcSecurityGroupIds: [sg.database.id],
    publiclyAccessible: false,
    multiAz: s.database.multiAz,
    backupRetentionPeriod: s.database.backupRetentionDays,
    backupWindow: '03:00-04:00',
    maintenanceWindow: 'sun:04:30-sun:05:30',
    copyTagsToSnapshot: true,
    deletionProtection: s.database.deletionProtection,
    skipFinalSnapshot: !prod,
    ...(prod ? { finalSnapshotIdentifier: `${name}-db-final` } : {}),
    autoMinorVersionUpgrade: true,
    iamDatabaseAuthenticationEnabled: false,
    tags,
  });
  return { instance };
}
