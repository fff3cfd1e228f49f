/**
 * deploy/: every Kubernetes manifest validates against the Kubernetes schemas (kubernetes-models)
 * and says what the drain, probes and network policy need; HAProxy and Prometheus accept their
 * configurations (haproxy -c, promtool); the Grafana dashboard asks only for metrics the server has.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import * as monitoringV1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import * as appsV1 from "kubernetes-models/apps/v1";
import * as autoscalingV2 from "kubernetes-models/autoscaling/v2";
import * as networkingV1 from "kubernetes-models/networking.k8s.io/v1";
import * as policyV1 from "kubernetes-models/policy/v1";
import * as coreV1 from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { createMetrics } from "../../server/metrics";

const DEPLOY = path.resolve("deploy");
const K8S = path.join(DEPLOY, "kubernetes");

const modelsByApiVersion: Record<string, Record<string, unknown>> = {
  v1: coreV1,
  "apps/v1": appsV1,
  "autoscaling/v2": autoscalingV2,
  "networking.k8s.io/v1": networkingV1,
  "policy/v1": policyV1,
  "monitoring.coreos.com/v1": monitoringV1,
};

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: manifests are checked field by field below
  spec?: any;
  file: string;
}

function readYaml(file: string): unknown[] {
  return parseAllDocuments(fs.readFileSync(file, "utf8")).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
    return doc.toJS();
  });
}

const kustomization = readYaml(path.join(K8S, "kustomization.yaml"))[0] as { resources: string[]; namespace: string };
const manifests: Manifest[] = kustomization.resources.flatMap((file) =>
  readYaml(path.join(K8S, file))
    .filter(Boolean)
    .map((doc) => ({ ...(doc as Omit<Manifest, "file">), file })),
);
const find = (kind: string, name: string) => manifests.find((m) => m.kind === kind && m.metadata.name === name)!;

describe("Kubernetes manifests", () => {
  it("kustomization lists every manifest in the folder, and each exists", () => {
    const yamlFiles = fs.readdirSync(K8S).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml");
    expect([...kustomization.resources].sort()).toEqual(yamlFiles.sort());
    expect(kustomization.namespace).toBe("osbyexample");
  });

  it("every manifest validates against its Kubernetes schema", () => {
    expect(manifests.length).toBeGreaterThanOrEqual(11);
    for (const manifest of manifests) {
      const { file, ...doc } = manifest;
      const Model = modelsByApiVersion[doc.apiVersion]?.[doc.kind] as (new (d: unknown) => { validate(): void }) | undefined;
      expect(Model, `${file}: no schema for ${doc.apiVersion} ${doc.kind}`).toBeDefined();
      try {
        new Model!(doc).validate();
      } catch (err) {
        throw new Error(`${file}: ${doc.kind} ${doc.metadata.name} is not valid: ${(err as Error).message}`);
      }
    }
    const kinds = new Set(manifests.map((m) => m.kind));
    for (const kind of [
      "Deployment",
      "Service",
      "Ingress",
      "HorizontalPodAutoscaler",
      "PodDisruptionBudget",
      "NetworkPolicy",
      "ServiceMonitor",
      "Namespace",
    ]) {
      expect(kinds, kind).toContain(kind);
    }
  });

  it("a schema violation is caught (the validation can fail)", () => {
    const broken = structuredClone(find("Deployment", "osbyexample")) as Partial<Manifest>;
    delete broken.file;
    broken.spec.replicas = "two";
    expect(() => new appsV1.Deployment(broken as never).validate()).toThrow();
  });

  it("the app: several replicas, probes on /api/health, a grace period that fits the drain, limits", () => {
    const app = find("Deployment", "osbyexample");
    expect(app.spec.replicas).toBeGreaterThanOrEqual(2);
    const pod = app.spec.template.spec;
    const container = pod.containers[0];
    expect(container.readinessProbe.httpGet.path).toBe("/api/health");
    // Liveness must stay green while draining, or the kubelet would kill runs mid-drain.
    expect(container.livenessProbe.httpGet.path).toBe("/api/health?probe=live");
    const env = Object.fromEntries(container.env.filter((e: { value?: string }) => e.value).map((e: { name: string; value: string }) => [e.name, e.value]));
    expect(env.REDIS_URL).toMatch(/^redis:\/\/redis:6379/);
    expect(env.TRUST_PROXY).toBeTruthy();
    expect(env.NEXT_TELEMETRY_DISABLED).toBe("1");
    const drainSeconds = (Number(env.DRAIN_READY_DELAY_MS) + Number(env.DRAIN_GRACE_MS)) / 1000;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(drainSeconds + 10);
    expect(container.resources.requests.cpu).toBeDefined();
    expect(container.resources.limits.memory).toBeDefined();
    expect(container.securityContext).toBeDefined();
    expect(env.METRICS_PORT).toBe("9464");
    expect(container.ports.map((p: { containerPort: number }) => p.containerPort)).toContain(9464);
  });

  it("the Ingress routes only the public port: /metrics is not reachable through it", () => {
    const ingress = find("Ingress", "osbyexample");
    const backends = ingress.spec.rules.flatMap((r: { http: { paths: Array<{ backend: { service: { port: { name: string } } } }> } }) =>
      r.http.paths.map((p) => p.backend.service.port.name),
    );
    expect(backends).toEqual(["http"]);
    const service = find("Service", "osbyexample");
    const http = service.spec.ports.find((p: { name: string }) => p.name === "http");
    expect(http.targetPort).toBe("http");
    expect(ingress.metadata.annotations?.["nginx.ingress.kubernetes.io/proxy-read-timeout"]).toBe("3600");
  });

  it("the app's NetworkPolicy allows egress to Redis and DNS only", () => {
    const policy = find("NetworkPolicy", "osbyexample");
    expect(policy.spec.policyTypes).toContain("Egress");
    const egress = policy.spec.egress as Array<{ to: Array<{ podSelector?: { matchLabels: Record<string, string> } }>; ports: Array<{ port: number }> }>;
    expect(egress).toHaveLength(2);
    expect(egress[0].to[0].podSelector?.matchLabels["app.kubernetes.io/name"]).toBe("redis");
    expect(egress[0].ports.map((p) => p.port)).toEqual([6379]);
    expect(egress[1].to[0].podSelector?.matchLabels["k8s-app"]).toBe("kube-dns");
    expect(egress[1].ports.map((p) => p.port)).toEqual([53, 53]);
  });

  it("autoscaling and disruption budget keep at least one replica serving", () => {
    expect(find("HorizontalPodAutoscaler", "osbyexample").spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(find("PodDisruptionBudget", "osbyexample").spec.minAvailable).toBeGreaterThanOrEqual(1);
    expect(find("ServiceMonitor", "osbyexample").spec.endpoints[0].port).toBe("metrics");
  });
});

describe("proxy and monitoring configuration", () => {
  it("HAProxy accepts deploy/haproxy/haproxy.cfg", () => {
    const out = execFileSync("haproxy", ["-c", "-f", path.join(DEPLOY, "haproxy/haproxy.cfg")], {
      env: { ...process.env, OSBE_PROXY_BIND: "127.0.0.1:3439", OSBE_REPLICA_1: "127.0.0.1:3431", OSBE_REPLICA_2: "127.0.0.1:3432" },
      encoding: "utf8",
    });
    expect(out).toMatch(/Configuration file is valid/);
  });

  it("promtool accepts deploy/prometheus/prometheus.yml", () => {
    const out = execFileSync("promtool", ["check", "config", path.join(DEPLOY, "prometheus/prometheus.yml")], { encoding: "utf8" });
    expect(out).toMatch(/SUCCESS/);
  });

  it("the Grafana dashboard queries only metrics the server exports", async () => {
    const dashboard = JSON.parse(fs.readFileSync(path.join(DEPLOY, "grafana/osbyexample.json"), "utf8")) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    const metrics = createMetrics();
    // Labelled series appear once used: use each once, as a running server would.
    metrics.runs.inc({ language: "c", outcome: "ok" });
    metrics.kernelRuns.inc({ kernel: "osbe", outcome: "ok" });
    metrics.compileDuration.observe({ language: "c" }, 0.1);
    metrics.runDuration.observe({ language: "c" }, 0.1);
    metrics.cache.inc({ result: "hit" });
    metrics.cpuSeconds.inc({ language: "c" }, 0.1);
    metrics.quotaRefusals.inc({ reason: "quota" });
    const exported = new Set(
      (await metrics.registry.metrics())
        .split("\n")
        .filter((line) => line && !line.startsWith("#"))
        .map((line) => line.split(/[{ ]/)[0]),
    );
    exported.add("up"); // Prometheus's own
    const asked = new Set<string>();
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const { expr } of panel.targets) {
        for (const name of expr.match(/\b(?:osbe|process|nodejs)_[a-z0-9_]+|\bup\b/g) ?? []) asked.add(name);
      }
    }
    const missing = [...asked].filter((name) => !exported.has(name));
    expect(missing).toEqual([]);
    for (const name of ["osbe_runs_total", "osbe_compile_duration_seconds_bucket", "osbe_queue_wait_seconds_bucket", "osbe_abuse_flags_total"]) {
      expect(asked).toContain(name);
    }
  });
});
