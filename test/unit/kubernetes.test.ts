import assert from 'node:assert/strict';
import {
  ANNOTATION_TAGS,
  LABEL_MACHINE,
  LABEL_MANAGED,
  LABEL_PROJECT,
  buildMachineJob,
  buildNoEgressPolicy,
  buildProjectNamespace,
  dnsLabel,
  labelValue,
  machineJobName,
  projectNamespace,
} from '../../domain/kubernetes.js';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;

describe('domain/kubernetes manifests', () => {
  const base = {
    machineId: 'machine-0b7f5a52-3c1e-4d7a-9f2b-6e8c4a1d2f30',
    projectId: 'project-7c2d9e41-5a3b-4f6c-8d1e-0a9b8c7d6e5f',
    profile: 'lightweight',
    spot: false,
    image: 'registry.example/autovibe/machine:1',
  };

  it('makes valid, stable, distinct DNS labels from any id', () => {
    assert.equal(dnsLabel('machine-abc'), 'machine-abc');
    const odd = ['Project_42', 'UPPER', 'a'.repeat(100), '-x-', '日本', 'a:b', 'a.b'];
    const labels = odd.map((t) => dnsLabel(t));
    for (const l of labels) assert.match(l, DNS_LABEL);
    assert.equal(new Set(labels).size, odd.length, 'no two inputs collide');
    assert.equal(dnsLabel('Project_42'), dnsLabel('Project_42'));
    assert.notEqual(dnsLabel('project_42'), dnsLabel('project-42'), 'a changed id does not collide with one that needed no change');
    assert.equal(projectNamespace(base.projectId), `autovibe-${base.projectId}`);
    assert.equal(machineJobName(base.machineId), base.machineId);
    assert.equal(machineJobName(base.machineId, 2), `${base.machineId}-2`);
    assert.match(machineJobName('m'.repeat(70), 3), DNS_LABEL);
    assert.notEqual(machineJobName('m'.repeat(70), 3), machineJobName('m'.repeat(70), 4));
    assert.match(projectNamespace('p'.repeat(80)), DNS_LABEL);
    assert.equal(labelValue('Keep.This_1'), 'Keep.This_1');
    assert.match(labelValue('x'.repeat(70)), LABEL_VALUE);
  });

  it('builds a Job per machine: profile resources, labels, ttl, no restarts, in the project namespace', () => {
    const job = buildMachineJob({ ...base, tags: { 'autovibe:objective': 'objective-3' }, ttlSecondsAfterFinished: 600, activeDeadlineSeconds: 1800 });
    assert.equal(job.apiVersion, 'batch/v1');
    assert.equal(job.kind, 'Job');
    assert.equal(job.metadata.name, machineJobName(base.machineId));
    assert.equal(job.metadata.namespace, `autovibe-${base.projectId}`);
    const labels = { [LABEL_MANAGED]: 'true', [LABEL_PROJECT]: base.projectId, [LABEL_MACHINE]: base.machineId };
    assert.deepEqual(job.metadata.labels, labels);
    assert.deepEqual(job.spec.template.metadata.labels, labels);
    assert.deepEqual(JSON.parse(job.metadata.annotations?.[ANNOTATION_TAGS] ?? ''), { 'autovibe:objective': 'objective-3' });
    assert.equal(job.spec.ttlSecondsAfterFinished, 600);
    assert.equal(job.spec.activeDeadlineSeconds, 1800);
    assert.equal(job.spec.backoffLimit, 0);
    assert.equal(job.spec.template.spec.restartPolicy, 'Never');
    const [container] = job.spec.template.spec.containers;
    assert.ok(container);
    // lightweight = 1 vCPU / 2 GiB, requested and limited (Guaranteed QoS).
    assert.deepEqual(container.resources, { requests: { cpu: '1', memory: '2048Mi' }, limits: { cpu: '1', memory: '2048Mi' } });
    assert.equal(container.image, base.image);
    assert.deepEqual(container.env, [
      { name: 'AUTOVIBE_MACHINE_ID', value: base.machineId },
      { name: 'AUTOVIBE_PROJECT_ID', value: base.projectId },
    ]);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.equal(job.spec.template.spec.securityContext.runAsNonRoot, true);
    assert.equal(job.spec.template.spec.nodeSelector, undefined);
    assert.equal(buildMachineJob(base).spec.ttlSecondsAfterFinished, 300, 'finished Jobs are cleaned up by default');
  });

  it('puts spot machines on spot nodes only when spot placement is configured', () => {
    const spotNodeSelector = { 'eks.amazonaws.com/capacityType': 'SPOT' };
    const spotTolerations = [{ key: 'spot', operator: 'Exists' as const, effect: 'NoSchedule' as const }];
    const spot = buildMachineJob({ ...base, spot: true, spotNodeSelector, spotTolerations });
    assert.deepEqual(spot.spec.template.spec.nodeSelector, spotNodeSelector);
    assert.deepEqual(spot.spec.template.spec.tolerations, spotTolerations);
    const onDemand = buildMachineJob({ ...base, spot: false, spotNodeSelector, spotTolerations });
    assert.equal(onDemand.spec.template.spec.nodeSelector, undefined);
    assert.equal(onDemand.spec.template.spec.tolerations, undefined);
  });

  it("builds a NetworkPolicy that denies all egress of exactly one machine Job's pods", () => {
    const policy = buildNoEgressPolicy({ machineId: base.machineId, projectId: base.projectId, jobName: `${base.machineId}-2`, namespace: 'ns' });
    assert.equal(policy.metadata.name, `${base.machineId}-2-no-egress`);
    assert.match(policy.metadata.name, DNS_LABEL);
    assert.equal(policy.metadata.namespace, 'ns');
    assert.deepEqual(policy.spec, {
      podSelector: { matchLabels: { [LABEL_MACHINE]: base.machineId, 'job-name': `${base.machineId}-2` } },
      policyTypes: ['Egress'],
      egress: [],
    });
  });

  it('labels namespaces with their project and refuses an unknown profile', () => {
    const ns = buildProjectNamespace(base.projectId);
    assert.equal(ns.metadata.name, `autovibe-${base.projectId}`);
    assert.deepEqual(ns.metadata.labels, { [LABEL_MANAGED]: 'true', [LABEL_PROJECT]: base.projectId });
    assert.throws(() => buildMachineJob({ ...base, profile: 'huge' }), /unknown compute profile "huge"/);
  });
});
